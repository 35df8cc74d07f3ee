package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// opTimeout bounds one request of the fault test. A request that takes
// longer is recorded as info: it may or may not have taken effect.
const opTimeout = 3 * time.Second

// testUser is an account the workload logs in to.
type testUser struct {
	credentials
	id string
}

// heldSession is a session some client holds, as the other clients see it:
// the revoker ends sessions through it and the probers validate its access
// token.
type heldSession struct {
	session string
	user    int // index into workload.users
	access  string
}

// staleToken is a refresh token that its holder has rotated away from; the
// thief replays it once the grace window has passed.
type staleToken struct {
	token      string
	session    string
	generation uint64
	rotated    time.Time
}

// workload runs the clients of a fault test and records what they see.
type workload struct {
	cfg    *testConfig
	tb     *testbed
	rec    *recorder
	client *apiClient
	users  []testUser

	mu           sync.Mutex
	heldSessions map[string]*heldSession
	stale        map[string]staleToken // session -> its oldest stale token not yet replayed
	liveAccess   []heldSession         // recent access tokens
	endedAccess  []heldSession         // access tokens of sessions seen ending
	sessions     map[string]bool       // every session any login returned
	process      int
}

// Bounds of the access-token lists the probers draw from.
const probeListSize = 64

func newWorkload(cfg *testConfig, tb *testbed, rec *recorder) *workload {
	return &workload{
		cfg:          cfg,
		tb:           tb,
		rec:          rec,
		client:       newAPIClient(64, opTimeout),
		heldSessions: make(map[string]*heldSession),
		stale:        make(map[string]staleToken),
		sessions:     make(map[string]bool),
	}
}

// newProcess returns a process id no other client has.
func (w *workload) newProcess() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.process++
	return w.process
}

// outcome classifies a response: ok for 2xx, fail for other 4xx (the request
// had no effect, or the effect the code names), info for anything else,
// because a timeout, a dropped connection or a 503 leaves the outcome open.
func outcome(r apiResponse, err error) (typ, code string) {
	switch {
	case err != nil:
		return typeInfo, clientErrorCode(err)
	case r.status >= 200 && r.status <= 299:
		return typeOK, ""
	case r.status >= 400 && r.status <= 499:
		return typeFail, r.code
	case r.code != "":
		return typeInfo, r.code
	}
	return typeInfo, fmt.Sprintf("http_%d", r.status)
}

// call records inv, sends the request and records its completion. fill
// sets fields of an ok completion from the response.
func (w *workload) call(inv Event, send func(ctx context.Context) (apiResponse, error), fill func(*Event, apiResponse)) (string, Event, apiResponse) {
	inv = w.rec.invoke(inv)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	r, err := send(ctx)
	cancel()
	typ, code := outcome(r, err)
	done := w.rec.complete(inv, typ, func(e *Event) {
		e.Code = code
		if typ == typeOK && fill != nil {
			fill(e, r)
		}
	})
	return typ, done, r
}

// setup signs up the users, retrying through faults that are not there yet.
func (w *workload) setup(ctx context.Context, users int) error {
	for i := range users {
		u := testUser{credentials: credentials{Username: fmt.Sprintf("user-%d-%s", i, randomHex(3)), Password: "jepsen password " + randomHex(4)}}
		var last string
		for attempt := 0; ; attempt++ {
			r, err := w.client.signup(ctx, w.tb.lbURL, u.credentials)
			if err == nil && r.status == http.StatusCreated {
				u.id = jsonField(r.body, "user_id")
				break
			}
			last = fmt.Sprint(err, " ", describeResponse(r))
			if attempt == 20 {
				return fmt.Errorf("sign up %s: %s", u.Username, last)
			}
			if err := sleep(ctx, 250*time.Millisecond); err != nil {
				return err
			}
		}
		w.users = append(w.users, u)
	}
	return nil
}

// login logs user in and returns the tokens, or ok false.
func (w *workload) login(proc, user int, base, node string) (tokenResponse, bool) {
	u := w.users[user]
	typ, _, r := w.call(Event{Process: proc, F: opLogin, User: u.id, Node: node, Honest: true},
		func(ctx context.Context) (apiResponse, error) { return w.client.login(ctx, base, u.credentials) },
		func(e *Event, r apiResponse) { fillTokens(e, r) })
	if typ != typeOK {
		return tokenResponse{}, false
	}
	t, err := parseTokens(r.body)
	if err != nil {
		return tokenResponse{}, false
	}
	w.mu.Lock()
	w.sessions[t.SessionID] = true
	w.mu.Unlock()
	w.hold(t, user)
	return t, true
}

// fillTokens sets a login's or refresh's ok completion from its tokens.
func fillTokens(e *Event, r apiResponse) {
	t, err := parseTokens(r.body)
	if err != nil {
		return
	}
	e.Successor = TokenDigest(t.RefreshToken)
	if session, gen, err := ParseRefreshFields(t.RefreshToken); err == nil {
		e.Session, e.Generation = session, gen
	}
}

// refresh presents tok once and returns the completion and new tokens.
func (w *workload) refresh(proc int, base, node, tok string, honest, purposeful bool) (string, Event, tokenResponse) {
	session, gen, _ := ParseRefreshFields(tok)
	inv := Event{Process: proc, F: opRefresh, Node: node, Session: session, Generation: gen,
		Token: TokenDigest(tok), Honest: honest, Purposeful: purposeful}
	typ, done, r := w.call(inv,
		func(ctx context.Context) (apiResponse, error) { return w.client.refresh(ctx, base, tok) },
		func(e *Event, r apiResponse) { fillTokens(e, r) })
	var t tokenResponse
	if typ == typeOK {
		t, _ = parseTokens(r.body)
	}
	return typ, done, t
}

// hold records that a client holds the session with this access token.
func (w *workload) hold(t tokenResponse, user int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := heldSession{session: t.SessionID, user: user, access: t.AccessToken}
	w.heldSessions[t.SessionID] = &h
	w.liveAccess = pushBounded(w.liveAccess, h)
}

// drop records that the session ended or was given up; its access token
// becomes a probe of an ended session.
func (w *workload) drop(session string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if h, ok := w.heldSessions[session]; ok {
		w.endedAccess = pushBounded(w.endedAccess, *h)
		delete(w.heldSessions, session)
	}
	delete(w.stale, session)
}

func pushBounded(list []heldSession, h heldSession) []heldSession {
	if len(list) < probeListSize {
		return append(list, h)
	}
	list[rand.IntN(len(list))] = h
	return list
}

// terminal reports whether a refresh failure ends the client's session.
func terminal(code string) bool {
	switch code {
	case codeReused, codeRevoked, "session_expired", "refresh_token_invalid", "invalid_grant":
		return true
	}
	return false
}

// chain is one client's hold on one session: its current refresh token and
// when the outcome of its last attempt became unknown.
type chain struct {
	user      int
	session   string
	token     string
	openSince time.Time // zero unless the last attempt ended info
}

// advance applies a refresh outcome to the chain. It returns false when the
// chain ended and the client must log in again.
func (w *workload) advance(c *chain, typ string, done Event, t tokenResponse) bool {
	switch typ {
	case typeOK:
		// The thief keeps the first stale token of each session, so that
		// the token grows older than the grace window.
		w.mu.Lock()
		if _, ok := w.stale[c.session]; !ok {
			w.stale[c.session] = staleToken{token: c.token, session: c.session, generation: done.Generation - 1, rotated: time.Now()}
		}
		w.mu.Unlock()
		c.token, c.openSince = t.RefreshToken, time.Time{}
		w.hold(t, c.user)
		return true
	case typeFail:
		if terminal(done.Code) {
			w.drop(c.session)
			return false
		}
		return true
	}
	// Info: retry the same token, but only well inside the grace window, in
	// which the server returns the same successor for a repeat. An honest
	// client that waited longer gives the session up rather than have a late
	// retry count as reuse.
	if c.openSince.IsZero() {
		c.openSince = time.Now()
	}
	if time.Since(c.openSince) > w.cfg.reuseGrace/2 {
		w.drop(c.session)
		return false
	}
	return true
}

// runHonest is one honest client: it logs in, refreshes its chain through
// the load balancer and logs in again when its session ends. It validates
// nothing itself (the probers do), so its throughput is that of refreshes.
func (w *workload) runHonest(ctx context.Context, user int) {
	proc := w.newProcess()
	var c *chain
	for ctx.Err() == nil {
		if c == nil {
			t, ok := w.login(proc, user, w.tb.lbURL, "lb")
			if !ok {
				sleep(ctx, 300*time.Millisecond)
				continue
			}
			c = &chain{user: user, session: t.SessionID, token: t.RefreshToken}
		}
		sleep(ctx, time.Duration(20+rand.IntN(40))*time.Millisecond)
		typ, done, t := w.refresh(proc, w.tb.lbURL, "lb", c.token, true, false)
		if !w.advance(c, typ, done, t) {
			c = nil
			continue
		}
		if typ == typeInfo {
			sleep(ctx, 200*time.Millisecond)
		}
	}
}

// runBurst refreshes one session through every node at the same moment, as
// several tabs of one browser do, again and again. Every request is honest:
// the grace window makes them all return the same successor.
func (w *workload) runBurst(ctx context.Context, user int) {
	procs := make([]int, len(w.tb.nodes))
	for i := range procs {
		procs[i] = w.newProcess()
	}
	var c *chain
	for ctx.Err() == nil {
		if c == nil {
			t, ok := w.login(procs[0], user, w.tb.lbURL, "lb")
			if !ok {
				sleep(ctx, 300*time.Millisecond)
				continue
			}
			c = &chain{user: user, session: t.SessionID, token: t.RefreshToken}
		}
		sleep(ctx, time.Duration(200+rand.IntN(300))*time.Millisecond)

		type answer struct {
			typ  string
			done Event
			t    tokenResponse
		}
		answers := make([]answer, len(procs))
		var wg sync.WaitGroup
		for i, n := range w.tb.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				typ, done, t := w.refresh(procs[i], n.url, n.name, c.token, true, false)
				answers[i] = answer{typ, done, t}
			}()
		}
		wg.Wait()

		// Continue with an ok response if there is one, else with the worst.
		best := answers[0]
		for _, a := range answers {
			if a.typ == typeOK || (best.typ != typeOK && a.typ == typeFail && terminal(a.done.Code)) {
				best = a
			}
		}
		if !w.advance(c, best.typ, best.done, best.t) {
			c = nil
		}
	}
}

// runThief replays refresh tokens that their holders rotated away from more
// than a grace window ago. Each replay should be detected as reuse and end
// the session, so the honest holder then gets session_revoked. The replay
// is marked purposeful to tell the checkers why.
func (w *workload) runThief(ctx context.Context) {
	proc := w.newProcess()
	for ctx.Err() == nil {
		sleep(ctx, time.Duration(2500+rand.IntN(1000))*time.Millisecond)
		tok, ok := w.steal()
		if !ok {
			continue
		}
		w.refresh(proc, w.tb.lbURL, "lb", tok.token, false, true)
	}
}

// steal takes a stale token whose grace window has passed, from a session
// that some client still holds.
func (w *workload) steal() (staleToken, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cutoff := time.Now().Add(-w.cfg.reuseGrace - 2*time.Second)
	for session, tok := range w.stale {
		if _, held := w.heldSessions[session]; held && tok.rotated.Before(cutoff) {
			delete(w.stale, session)
			return tok, true
		}
	}
	return staleToken{}, false
}

// randomNode returns a random node of the testbed.
func (w *workload) randomNode() *clusterNode {
	return w.tb.nodes[rand.IntN(len(w.tb.nodes))]
}

// validate sends the access token to one node directly, to check that it is valid.
func (w *workload) validate(proc int, h heldSession, n *clusterNode) {
	w.call(Event{Process: proc, F: opValidate, Node: n.name, Session: h.session},
		func(ctx context.Context) (apiResponse, error) { return w.client.me(ctx, n.url, h.access) }, nil)
}

// runProber validates access tokens of live and of ended sessions on random
// nodes, to check that every node rejects an ended session's tokens.
func (w *workload) runProber(ctx context.Context) {
	proc := w.newProcess()
	for ctx.Err() == nil {
		sleep(ctx, time.Duration(30+rand.IntN(40))*time.Millisecond)
		w.mu.Lock()
		list := w.liveAccess
		if rand.IntN(2) == 0 && len(w.endedAccess) > 0 {
			list = w.endedAccess
		}
		var h heldSession
		ok := len(list) > 0
		if ok {
			h = list[rand.IntN(len(list))]
		}
		w.mu.Unlock()
		if ok {
			w.validate(proc, h, w.randomNode())
		}
	}
}
