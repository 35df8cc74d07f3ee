package api

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// LoginLimit is a budget of failed logins: Burst failures at once, refilled
// at Burst per Per. A zero Burst turns the limit off.
type LoginLimit struct {
	Burst int
	Per   time.Duration
}

// ParseLoginLimit parses "N/DURATION", such as "10/15m", or "0" for no limit.
func ParseLoginLimit(s string) (LoginLimit, error) {
	if strings.TrimSpace(s) == "0" {
		return LoginLimit{}, nil
	}
	count, per, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(strings.TrimSpace(count))
	if !ok || err != nil || n < 1 {
		return LoginLimit{}, fmt.Errorf("invalid login limit %q: want N/DURATION such as 10/15m, or 0", s)
	}
	d, err := time.ParseDuration(strings.TrimSpace(per))
	if err != nil || d <= 0 {
		return LoginLimit{}, fmt.Errorf("invalid login limit %q: want a positive duration after the slash", s)
	}
	return LoginLimit{Burst: n, Per: d}, nil
}

// String formats the limit the way ParseLoginLimit reads it.
func (l LoginLimit) String() string {
	if l.Burst == 0 {
		return "0"
	}
	return fmt.Sprintf("%d/%s", l.Burst, l.Per)
}

// maxLimiterKeys bounds each limiter table. Past it, full limiters (those
// of keys with no recent failure) are dropped, then random ones.
const maxLimiterKeys = 1 << 16

// limiterTable holds one token bucket per key (a username or a client
// address), created on the key's first failure.
type limiterTable struct {
	limit LoginLimit
	keys  map[string]*rate.Limiter
}

func newLimiterTable(limit LoginLimit) *limiterTable {
	return &limiterTable{limit: limit, keys: make(map[string]*rate.Limiter)}
}

// wait returns how long until key may fail again, zero when it may now.
func (t *limiterTable) wait(key string, now time.Time) time.Duration {
	lim, ok := t.keys[key]
	if t.limit.Burst == 0 || !ok {
		return 0
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	perToken := t.limit.Per / time.Duration(t.limit.Burst)
	return time.Duration(math.Ceil((1 - tokens) * float64(perToken)))
}

// fail spends one token of key's bucket.
func (t *limiterTable) fail(key string, now time.Time) {
	if t.limit.Burst == 0 {
		return
	}
	lim, ok := t.keys[key]
	if !ok {
		if len(t.keys) >= maxLimiterKeys {
			t.evict(now)
		}
		lim = rate.NewLimiter(rate.Every(t.limit.Per/time.Duration(t.limit.Burst)), t.limit.Burst)
		t.keys[key] = lim
	}
	lim.AllowN(now, 1)
}

// evict drops the limiters that have refilled, and if that frees too
// little, a quarter of the table at random.
func (t *limiterTable) evict(now time.Time) {
	for key, lim := range t.keys {
		if lim.TokensAt(now) >= float64(t.limit.Burst) {
			delete(t.keys, key)
		}
	}
	for key := range t.keys {
		if len(t.keys) < maxLimiterKeys*3/4 {
			break
		}
		delete(t.keys, key)
	}
}

// loginLimiter throttles failed logins per username and per client
// address. Only failures spend the budget, so many successful logins from
// one address (an office behind NAT, a backend, a test suite) are never
// throttled, while guessing passwords for one account, or for many accounts
// from one address, is.
// NOTE: the budgets live in the leader's memory, so a new leader starts
// with full ones and a failover gives a guesser another round.
type loginLimiter struct {
	mu     sync.Mutex
	byUser *limiterTable
	byAddr *limiterTable
}

func newLoginLimiter(perUser, perAddr LoginLimit) *loginLimiter {
	return &loginLimiter{byUser: newLimiterTable(perUser), byAddr: newLimiterTable(perAddr)}
}

// wait returns how long the username and address must wait before another
// attempt, zero when they may try now.
func (l *loginLimiter) wait(user, addr string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(l.byUser.wait(user, now), l.byAddr.wait(addr, now))
}

// failed records a failed attempt of the username from the address.
func (l *loginLimiter) failed(user, addr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byUser.fail(user, now)
	l.byAddr.fail(addr, now)
}

// rateLimited is the error of a throttled login.
func rateLimited(wait time.Duration) *Error {
	seconds := max(int(math.Ceil(wait.Seconds())), 1)
	return &Error{Code: CodeRateLimited, RetryAfter: seconds,
		Detail: fmt.Sprintf("too many failed logins for this account or from this address; retry in %d s", seconds)}
}
