package actors

import (
	"context"
	"errors"
	"time"

	"github.com/rotorhq/rotor/fsm"
	"github.com/rotorhq/rotor/token"
)

type requestKind uint8

const (
	kindRefresh requestKind = iota + 1
	kindRevoke
)

// request is one message in an actor's mailbox. Its reply channel is
// buffered, so the actor never blocks on a caller that has gone.
type request struct {
	ctx       context.Context // the caller's; a request whose caller left is dropped
	kind      requestKind
	token     token.RefreshToken
	userAgent string
	ip        string
	reason    fsm.RevokeReason
	reply     chan reply
}

type reply struct {
	result RefreshResult
	err    error
}

// actor serializes the requests of one session.
type actor struct {
	m       *Manager
	session fsm.ID
	mailbox chan *request
	stop    chan struct{} // closed by the manager when leadership ends
	done    chan struct{} // closed by run when the actor exits

	pending int // requests acquired but not yet taken; guarded by m.mu
}

func newActor(m *Manager, session fsm.ID) *actor {
	return &actor{
		m:       m,
		session: session,
		mailbox: make(chan *request, m.cfg.MailboxSize),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}

func (a *actor) run() {
	defer close(a.done)
	idle := time.NewTimer(a.m.cfg.PassivateAfter)
	defer idle.Stop()
	for {
		select {
		case req := <-a.mailbox:
			a.m.release(a)
			req.reply <- a.handle(req)
			idle.Reset(a.m.cfg.PassivateAfter)
		case <-idle.C:
			if a.m.passivate(a) {
				return
			}
			idle.Reset(a.m.cfg.PassivateAfter)
		case <-a.stop:
			return
		}
	}
}

func (a *actor) handle(req *request) reply {
	// A caller that gave up while the request waited in the mailbox (or in
	// a socket, while this process was stopped) will never get the reply.
	// Acting on it anyway would rotate a chain that the client has already
	// moved on from elsewhere, and a late rotation of an old token is reuse.
	if err := req.ctx.Err(); err != nil {
		return reply{err: err}
	}
	switch req.kind {
	case kindRefresh:
		res, err := a.refresh(req)
		return reply{result: res, err: err}
	case kindRevoke:
		return reply{err: a.revoke(req.reason)}
	}
	return reply{err: errors.New("unknown request kind")}
}

// maxDecisions bounds how often one refresh re-reads the state after its
// rotation lost a compare-and-set. Within one leader's term only this actor
// rotates the session, so a second loss means the state is moving under us
// for another reason and the client should retry.
const maxDecisions = 2

// refresh decides rotate, grace replay, reuse or reject on the session's
// current committed state, and commits rotations and reuse revocations.
func (a *actor) refresh(req *request) (RefreshResult, error) {
	m := a.m
	for range maxDecisions {
		s, ok := m.state.Session(a.session)
		if !ok {
			return RefreshResult{}, ErrInvalidToken
		}
		if m.keys.VerifyRefresh(req.token, s.Nonce) != nil {
			return RefreshResult{}, ErrInvalidToken
		}
		if s.Revoked {
			return RefreshResult{}, ErrRevoked
		}
		now := m.cfg.Now()
		if s.ExpiredAt(now) {
			return RefreshResult{}, ErrExpired
		}

		gen := req.token.Generation
		switch {
		case gen == s.Generation:
			res, err := a.rotate(s, gen, now, req)
			if errors.Is(err, fsm.ErrGenerationMismatch) {
				continue
			}
			return res, err

		case gen+1 == s.Generation && now.Sub(s.RotatedAt) < m.cfg.Grace:
			// Grace replay: the client (or another tab, or a retry after a
			// lost response) presents the token we just rotated. It gets the
			// successor already committed, derived again byte for byte, and
			// no log entry: a second successor would fork the family.
			return RefreshResult{
				Session:      s,
				RefreshToken: m.keys.MintRefresh(s.ID, s.Generation, s.Nonce),
				Replayed:     true,
			}, nil

		case gen < s.Generation && skipCAS:
			return a.rotate(s, gen, now, req)

		case gen < s.Generation:
			// Reuse: an older token, or the previous one after the grace
			// window. Someone else holds a copy, so the whole family ends.
			if err := a.revoke(fsm.ReasonReuse); err != nil {
				return RefreshResult{}, err
			}
			m.cfg.Logger.Info("refresh token reuse revoked session",
				"session_id", s.ID.String(), "presented_generation", gen, "current_generation", s.Generation)
			return RefreshResult{}, ErrReused

		default:
			// A valid MAC for a generation the session never reached: state
			// was lost or the secret leaked. Reject without touching state.
			return RefreshResult{}, ErrInvalidToken
		}
	}
	return RefreshResult{}, ErrUnavailable
}

func (a *actor) rotate(s *fsm.Session, from uint64, now time.Time, req *request) (RefreshResult, error) {
	m := a.m
	res, err := m.commit(&fsm.RotateSession{
		At:             now,
		SessionID:      s.ID,
		FromGeneration: from,
		IdleExpires:    now.Add(m.cfg.IdleTTL),
		UserAgent:      req.userAgent,
		IP:             req.ip,
	})
	if err != nil {
		return RefreshResult{}, err
	}
	if errors.Is(res.Err, fsm.ErrSessionNotFound) {
		return RefreshResult{}, ErrInvalidToken
	}
	if res.Err != nil {
		return RefreshResult{}, fsmError(res.Err)
	}
	next := res.Session
	return RefreshResult{Session: next, RefreshToken: m.keys.MintRefresh(next.ID, next.Generation, next.Nonce)}, nil
}

func (a *actor) revoke(reason fsm.RevokeReason) error {
	now := a.m.cfg.Now()
	res, err := a.m.commit(&fsm.RevokeSession{
		At:        now,
		SessionID: a.session,
		Reason:    reason,
		DenyUntil: now.Add(a.m.cfg.DenyFor),
	})
	if err != nil {
		return err
	}
	if res.Err != nil {
		return fsmError(res.Err)
	}
	return nil
}

// fsmError maps an FSM rejection to this package's errors. A generation
// mismatch is passed through so refresh can decide again.
func fsmError(err error) error {
	switch {
	case errors.Is(err, fsm.ErrGenerationMismatch):
		return err
	case errors.Is(err, fsm.ErrSessionRevoked), errors.Is(err, fsm.ErrUserDisabled):
		return ErrRevoked
	case errors.Is(err, fsm.ErrSessionExpired):
		return ErrExpired
	case errors.Is(err, fsm.ErrSessionNotFound):
		return ErrNotFound
	default:
		return err
	}
}
