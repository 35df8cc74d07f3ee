package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/rotorhq/rotor/cluster"
	"github.com/rotorhq/rotor/fsm"
	"github.com/rotorhq/rotor/token"
)

// Applier commits commands through Raft; *cluster.Node implements it.
type Applier interface {
	Apply(ctx context.Context, c fsm.Command) (*fsm.Result, error)
}

// Config sets the session rules the actors enforce.
type Config struct {
	// Grace is how long after a rotation the previous refresh token still
	// returns the same successor. Zero makes every second presentation reuse.
	Grace time.Duration

	// IdleTTL is how far each rotation moves the idle deadline.
	IdleTTL time.Duration

	// DenyFor is how long a revoked session's access tokens can still be
	// presented: the access-token lifetime plus the verifiers' leeway.
	DenyFor time.Duration

	// PassivateAfter is how long an actor waits for work before it exits.
	PassivateAfter time.Duration

	// MailboxSize is how many requests may wait for one actor.
	MailboxSize int

	// Now is the leader's clock; nil means time.Now.
	Now func() time.Time

	Logger *slog.Logger
}

// Manager owns the actors of this node while it leads.
type Manager struct {
	cfg   Config
	state *fsm.FSM
	raft  Applier
	keys  *token.Keyring

	mu      sync.Mutex
	leading bool              // guarded by mu
	actors  map[fsm.ID]*actor // guarded by mu
}

// NewManager returns a manager that does not lead until SetLeading(true).
func NewManager(cfg Config, state *fsm.FSM, raft Applier, keys *token.Keyring) *Manager {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PassivateAfter <= 0 {
		cfg.PassivateAfter = 30 * time.Second
	}
	if cfg.MailboxSize <= 0 {
		cfg.MailboxSize = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Manager{cfg: cfg, state: state, raft: raft, keys: keys, actors: make(map[fsm.ID]*actor)}
}

// SetLeading starts (true) or stops (false) serving. Stopping ends every
// actor; requests still queued fail with ErrNotLeader. The node calls
// SetLeading(true) only after its FSM has applied every entry the previous
// leader committed, so that actors decide on current state.
func (m *Manager) SetLeading(leading bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leading = leading
	if leading {
		return
	}
	for id, a := range m.actors {
		close(a.stop)
		delete(m.actors, id)
	}
}

// Leading reports whether the manager serves, that is, this node leads and
// has caught up with the log.
func (m *Manager) Leading() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leading
}

// Active returns the number of running actors.
func (m *Manager) Active() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.actors)
}

// RefreshResult is the outcome of a successful refresh.
type RefreshResult struct {
	// Session is the session after the refresh.
	Session *fsm.Session

	// RefreshToken is the successor token.
	RefreshToken string

	// Replayed is true when the presented token was the previous generation
	// inside the grace window, so no rotation was committed.
	Replayed bool
}

// Refresh rotates the session named by tok, or replays its successor inside
// the grace window. userAgent and ip update the session's device record.
func (m *Manager) Refresh(ctx context.Context, tok token.RefreshToken, userAgent, ip string) (RefreshResult, error) {
	rep := m.send(ctx, tok.SessionID, &request{kind: kindRefresh, token: tok, userAgent: userAgent, ip: ip})
	return rep.result, rep.err
}

// Revoke ends the session for reason. Revoking a revoked session succeeds.
func (m *Manager) Revoke(ctx context.Context, session fsm.ID, reason fsm.RevokeReason) error {
	return m.send(ctx, session, &request{kind: kindRevoke, reason: reason}).err
}

// send delivers req to the session's actor, starting one if needed, and
// waits for the reply, the actor's end or the caller's context.
func (m *Manager) send(ctx context.Context, session fsm.ID, req *request) reply {
	req.ctx = ctx
	req.reply = make(chan reply, 1)
	a, err := m.acquire(session)
	if err != nil {
		return reply{err: err}
	}

	select {
	case a.mailbox <- req:
	case <-a.done:
		return reply{err: ErrNotLeader}
	case <-ctx.Done():
		m.release(a)
		return reply{err: ctx.Err()}
	}

	select {
	case rep := <-req.reply:
		return rep
	case <-a.done:
		return reply{err: ErrNotLeader}
	case <-ctx.Done():
		// The actor still finishes the request: a committed rotation is
		// then found by the client's retry as a grace replay.
		return reply{err: ctx.Err()}
	}
}

// acquire returns the session's actor, starting it if needed, and counts
// one pending request on it so that it does not passivate meanwhile.
func (m *Manager) acquire(session fsm.ID) (*actor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.leading {
		return nil, ErrNotLeader
	}
	a, ok := m.actors[session]
	if !ok {
		a = newActor(m, session)
		m.actors[session] = a
		go a.run()
	}
	a.pending++
	return a, nil
}

// release undoes acquire for a request that never reached the mailbox, or
// that the actor has taken out of it.
func (m *Manager) release(a *actor) {
	m.mu.Lock()
	a.pending--
	m.mu.Unlock()
}

// passivate removes an idle actor unless a request is on its way to it.
func (m *Manager) passivate(a *actor) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a.pending > 0 {
		return false
	}
	if m.actors[a.session] == a {
		delete(m.actors, a.session)
	}
	return true
}

// commit applies a command with the manager's own deadline, not the
// caller's: a decision once taken is carried through even if the client has
// gone, so that its retry finds a consistent state.
func (m *Manager) commit(c fsm.Command) (*fsm.Result, error) {
	res, err := m.raft.Apply(context.Background(), c)
	switch {
	case err == nil:
		return res, nil
	case errors.Is(err, cluster.ErrNotLeader):
		return nil, fmt.Errorf("%w: %w", ErrNotLeader, err)
	default:
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
}
