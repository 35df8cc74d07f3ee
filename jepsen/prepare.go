package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// prepareWorkers is how many signups and logins run at once before the
// measured phase. Each costs an argon2id hash on the node, and more in
// parallel than the node has cores does not finish sooner.
const prepareWorkers = 8

// session is one prepared login: the newest tokens of its refresh-token
// family. A worker of the refresh or mixed workload owns its session, so the
// fields need no lock.
type session struct {
	user    int // index into pool.users
	access  string
	refresh string
}

// pool holds the users and sessions created for one run.
type pool struct {
	users    []credentials
	sessions []*session
	next     atomic.Uint64 // round-robin cursor over users for logins
}

// nextUserIndex returns the users in turn, so logins spread over every
// account.
func (p *pool) nextUserIndex() int {
	return int((p.next.Add(1) - 1) % uint64(len(p.users)))
}

func (p *pool) nextUser() credentials {
	return p.users[p.nextUserIndex()]
}

// prepare signs up cfg.users users with random names and, for the workloads
// that need them, logs in cfg.sessions sessions.
func prepare(ctx context.Context, cfg *loadConfig, client *apiClient, progress func(string, ...any)) (*pool, error) {
	started := time.Now()
	p := &pool{users: make([]credentials, cfg.users)}
	prefix := randomHex(4)
	for i := range p.users {
		p.users[i] = credentials{Username: fmt.Sprintf("load-%s-%d", prefix, i), Password: cfg.password}
	}

	err := forEach(ctx, len(p.users), func(i int) error {
		resp, err := sendRetrying(ctx, cfg, func() (apiResponse, error) {
			return client.signup(ctx, cfg.target, p.users[i])
		})
		switch {
		case err != nil:
			return fmt.Errorf("sign up %s at %s: %w; check that a node or load balancer listens there", p.users[i].Username, cfg.target, err)
		case resp.status == http.StatusCreated:
			return nil
		case resp.status == http.StatusUnauthorized || resp.status == http.StatusForbidden:
			return fmt.Errorf("sign up at %s: %s; the node must run with --signup=true (the default)", cfg.target, describeResponse(resp))
		default:
			return fmt.Errorf("sign up %s at %s: %s", p.users[i].Username, cfg.target, describeResponse(resp))
		}
	})
	if err != nil {
		return nil, err
	}

	if cfg.usesSessions() {
		p.sessions = make([]*session, cfg.sessions)
		err = forEach(ctx, len(p.sessions), func(i int) error {
			s := &session{user: i % len(p.users)}
			if err := p.login(ctx, cfg, client, s); err != nil {
				return err
			}
			p.sessions[i] = s
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	progress("prepared %d users (prefix load-%s-) and %d sessions in %s",
		len(p.users), prefix, len(p.sessions), time.Since(started).Round(time.Millisecond))
	return p, nil
}

// login starts a new session for s.user and stores its tokens in s.
func (p *pool) login(ctx context.Context, cfg *loadConfig, client *apiClient, s *session) error {
	user := p.users[s.user]
	resp, err := sendRetrying(ctx, cfg, func() (apiResponse, error) {
		return client.login(ctx, cfg.target, user)
	})
	if err != nil {
		return fmt.Errorf("log in %s at %s: %w", user.Username, cfg.target, err)
	}
	if resp.status != http.StatusOK {
		return fmt.Errorf("log in %s at %s: %s", user.Username, cfg.target, describeResponse(resp))
	}
	tokens, err := parseTokens(resp.body)
	if err != nil {
		return fmt.Errorf("log in %s at %s: %w", user.Username, cfg.target, err)
	}
	s.access, s.refresh = tokens.AccessToken, tokens.RefreshToken
	return nil
}

// renewAccessTokens refreshes every prepared session once, outside any
// measurement, so each holds an access token with its full lifetime.
func (p *pool) renewAccessTokens(ctx context.Context, cfg *loadConfig, client *apiClient) error {
	return forEach(ctx, len(p.sessions), func(i int) error {
		s := p.sessions[i]
		resp, err := sendRetrying(ctx, cfg, func() (apiResponse, error) {
			return client.refresh(ctx, cfg.target, s.refresh)
		})
		if err == nil && resp.status != http.StatusOK {
			err = errors.New(describeResponse(resp))
		}
		if err != nil {
			// A session broken by an earlier level is replaced, not fatal.
			return p.login(ctx, cfg, client, s)
		}
		tokens, err := parseTokens(resp.body)
		if err != nil {
			return fmt.Errorf("refresh a prepared session at %s: %w", cfg.target, err)
		}
		s.access, s.refresh = tokens.AccessToken, tokens.RefreshToken
		return nil
	})
}

// sendRetrying calls send until it returns something other than 503, at most
// 1 + cfg.maxRetries times, waiting cfg.retryDelay in between.
func sendRetrying(ctx context.Context, cfg *loadConfig, send func() (apiResponse, error)) (apiResponse, error) {
	for attempt := 0; ; attempt++ {
		resp, err := send()
		if err != nil || resp.status != http.StatusServiceUnavailable || attempt >= cfg.maxRetries {
			return resp, err
		}
		if err := sleep(ctx, cfg.retryDelay); err != nil {
			return resp, err
		}
	}
}

// forEach calls fn for 0..n-1 on prepareWorkers goroutines and returns the
// first error. After an error or cancellation it starts no further calls.
func forEach(ctx context.Context, n int, fn func(i int) error) error {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return firstErr != nil
	}
	for range min(prepareWorkers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || failed() || ctx.Err() != nil {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return firstErr
}

// sleep waits for d or until ctx ends, and returns ctx's error in that case.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// randomHex returns n random bytes in hex. Since Go 1.24, crypto/rand.Read
// crashes the program instead of returning an error, so none is checked.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
