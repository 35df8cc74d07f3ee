package fsm_test

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rotorhq/rotor/fsm"
)

var (
	randomSeed  = flag.Uint64("fsm.seed", 0, "run TestRandomHistory with this seed only; 0 runs seeds 1 to -fsm.seeds")
	randomSeeds = flag.Int("fsm.seeds", 200, "number of seeds TestRandomHistory runs")
	randomSteps = flag.Int("fsm.steps", 500, "steps per seed in TestRandomHistory")
)

// Lifetimes in the random histories are short, so that idle and absolute
// deadlines pass within a few hundred steps.
const (
	randomIdle     = 2 * time.Hour
	randomAbsolute = 12 * time.Hour
	randomDeny     = 15 * time.Minute
	randomMaxLive  = 6
)

// TestRandomHistory applies seeded random histories of refreshes, racing and
// replayed refreshes, revocations, expiries and cleanups to an FSM. It checks
// every result against a reference model and, after every step, these
// properties:
//   - no two rotations of one session from the same generation both succeed;
//   - no rotation succeeds after the session's revocation committed;
//   - a revoked session never becomes live again, and a dropped one never
//     comes back;
//   - no rotation succeeds at or after the session's deadline;
//   - a session's generation never decreases.
func TestRandomHistory(t *testing.T) {
	seeds := make([]uint64, 0, *randomSeeds)
	if *randomSeed != 0 {
		seeds = append(seeds, *randomSeed)
	} else {
		for seed := range uint64(*randomSeeds) {
			seeds = append(seeds, seed+1)
		}
	}
	steps := *randomSteps
	if testing.Short() {
		seeds = seeds[:min(len(seeds), 20)]
	}

	outcomes := make(map[error]int)
	for _, seed := range seeds {
		h := newHistory(t, seed, outcomes)
		for h.step = 1; h.step <= steps; h.step++ {
			h.runStep()
			h.checkState()
		}
	}

	// A generator change that stops reaching an outcome would make the
	// properties above hold vacuously for it.
	if len(seeds) < 20 {
		return
	}
	for _, want := range []error{nil, fsm.ErrSessionNotFound, fsm.ErrSessionRevoked, fsm.ErrSessionExpired, fsm.ErrGenerationMismatch} {
		if outcomes[want] == 0 {
			t.Errorf("rotations with outcome %v: got 0, want at least 1", want)
		}
	}
	t.Logf("rotation outcomes: %v", outcomes)
}

type modelUser struct {
	id       fsm.ID
	disabled bool
	version  uint64
	sessions []*modelSession // creation order
}

type modelSession struct {
	id         fsm.ID
	user       *modelUser
	generation uint64
	idle       time.Time
	expires    time.Time
	revoked    bool
	denyUntil  time.Time
	dropped    bool

	// rotatedFrom holds every generation a rotation succeeded from.
	rotatedFrom map[uint64]bool
}

func (s *modelSession) deadline() time.Time {
	if s.idle.Before(s.expires) {
		return s.idle
	}
	return s.expires
}

// history is one random run: the FSM under test, the model of what its state
// must be, and the commands sent so far.
type history struct {
	t    *testing.T
	seed uint64
	step int
	rng  *rand.Rand
	f    *fsm.FSM
	now  time.Time

	users    []*modelUser
	sessions []*modelSession
	byID     map[fsm.ID]*modelSession
	rotates  []*fsm.RotateSession // every rotation applied, for replays
	nextID   uint32

	// outcomes counts rotation results by error, nil for success.
	outcomes map[error]int
}

func newHistory(t *testing.T, seed uint64, outcomes map[error]int) *history {
	h := &history{
		t:        t,
		seed:     seed,
		rng:      rand.New(rand.NewPCG(seed, 0x5eed)),
		f:        fsm.New(nil),
		now:      t0,
		byID:     make(map[fsm.ID]*modelSession),
		outcomes: outcomes,
	}
	for i := range 2 {
		u := &modelUser{id: h.newID()}
		h.users = append(h.users, u)
		h.expectOK(h.f.ApplyCommand(&fsm.CreateUser{At: h.now, UserID: u.id, Username: fmt.Sprintf("user-%d", i)}), "create user")
	}
	h.createSession(h.users[0])
	return h
}

// failf stops the test and names the seed that reproduces the failure.
func (h *history) failf(format string, args ...any) {
	h.t.Helper()
	h.t.Fatalf("seed %d, step %d: %s (rerun with -run TestRandomHistory -fsm.seed=%d)",
		h.seed, h.step, fmt.Sprintf(format, args...), h.seed)
}

func (h *history) expectOK(res *fsm.Result, what string) {
	h.t.Helper()
	if res == nil || res.Err != nil {
		h.failf("%s: got %+v, want success", what, res)
	}
}

func (h *history) newID() fsm.ID {
	h.nextID++
	var id fsm.ID
	id[0] = byte(h.nextID >> 24)
	id[1] = byte(h.nextID >> 16)
	id[2] = byte(h.nextID >> 8)
	id[3] = byte(h.nextID)
	return id
}

func (h *history) runStep() {
	h.t.Helper()
	switch n := h.rng.IntN(100); {
	case n < 30:
		h.refresh()
	case n < 40:
		h.racingRefresh()
	case n < 50:
		h.laggingRefresh()
	case n < 58:
		h.replay()
	case n < 63:
		h.revokeSession()
	case n < 66:
		h.revokeUser()
	case n < 80:
		h.advanceClock()
	case n < 85:
		h.cleanup()
	case n < 98:
		if h.liveCount() < randomMaxLive {
			h.createSession(h.users[h.rng.IntN(len(h.users))])
		}
	default:
		h.toggleDisabled()
	}
}

func (h *history) liveCount() int {
	n := 0
	for _, s := range h.sessions {
		if !s.dropped && !s.revoked {
			n++
		}
	}
	return n
}

// pickSession returns a session the history created, dropped ones included,
// or nil when there is none.
func (h *history) pickSession() *modelSession {
	if len(h.sessions) == 0 {
		return nil
	}
	// Mostly pick a live session, so that most commands can succeed.
	if h.rng.IntN(5) != 0 {
		var live []*modelSession
		for _, s := range h.sessions {
			if !s.dropped && !s.revoked {
				live = append(live, s)
			}
		}
		if len(live) > 0 {
			return live[h.rng.IntN(len(live))]
		}
	}
	return h.sessions[h.rng.IntN(len(h.sessions))]
}

func (h *history) rotateCommand(s *modelSession, from uint64) *fsm.RotateSession {
	idle := h.now.Add(randomIdle)
	if h.rng.IntN(4) == 0 {
		// Past the absolute deadline, which Apply must clamp it to.
		idle = h.now.Add(2 * randomAbsolute)
	}
	return &fsm.RotateSession{
		At: h.now, SessionID: s.id, FromGeneration: from,
		IdleExpires: idle, IP: fmt.Sprintf("192.0.2.%d", h.rng.IntN(256)),
	}
}

// refresh rotates a session from its current generation, as an actor that
// holds the newest refresh token would.
func (h *history) refresh() {
	h.t.Helper()
	s := h.pickSession()
	if s == nil {
		return
	}
	h.applyRotations(h.rotateCommand(s, s.generation))
}

// racingRefresh sends two rotations from the same generation, as two actors
// that read the session at the same time would. Half of the time both go into
// one raft batch.
func (h *history) racingRefresh() {
	h.t.Helper()
	s := h.pickSession()
	if s == nil {
		return
	}
	h.applyRotations(h.rotateCommand(s, s.generation), h.rotateCommand(s, s.generation))
}

// laggingRefresh rotates from a generation the session had at some point,
// possibly the current one, as an actor with an outdated view would.
func (h *history) laggingRefresh() {
	h.t.Helper()
	s := h.pickSession()
	if s == nil {
		return
	}
	from := uint64(h.rng.IntN(int(s.generation)) + 1)
	h.applyRotations(h.rotateCommand(s, from))
}

// replay applies an earlier rotation again, with its original At.
func (h *history) replay() {
	h.t.Helper()
	if len(h.rotates) == 0 {
		return
	}
	// Recent rotations are more likely to name a session that still exists.
	recent := h.rotates[max(0, len(h.rotates)-20):]
	c := *recent[h.rng.IntN(len(recent))]
	h.applyRotations(&c)
}

// applyRotations applies the commands one at a time or in one batch, and
// checks each result against the model in log order.
func (h *history) applyRotations(cmds ...*fsm.RotateSession) {
	h.t.Helper()
	results := make([]*fsm.Result, len(cmds))
	if len(cmds) > 1 && h.rng.IntN(2) == 0 {
		logs := make([]*raft.Log, len(cmds))
		for i, c := range cmds {
			data, err := fsm.Encode(c)
			if err != nil {
				h.failf("Encode: %v", err)
			}
			logs[i] = &raft.Log{Type: raft.LogCommand, Data: data}
		}
		for i, out := range h.f.ApplyBatch(logs) {
			results[i], _ = out.(*fsm.Result)
		}
	} else {
		for i, c := range cmds {
			results[i] = h.f.ApplyCommand(c)
		}
	}

	successes := 0
	for i, c := range cmds {
		h.checkRotation(c, results[i])
		if results[i] != nil && results[i].Err == nil {
			successes++
		}
	}
	if successes > 1 && cmds[0].FromGeneration == cmds[1].FromGeneration {
		h.failf("racing rotations of %v from generation %d: got %d successes, want at most 1", cmds[0].SessionID, cmds[0].FromGeneration, successes)
	}
}

// expectedRotation returns the error the model predicts for c.
func (h *history) expectedRotation(c *fsm.RotateSession) error {
	s := h.byID[c.SessionID]
	switch {
	case s == nil || s.dropped:
		return fsm.ErrSessionNotFound
	case s.revoked:
		return fsm.ErrSessionRevoked
	case !c.At.Before(s.deadline()):
		return fsm.ErrSessionExpired
	case c.FromGeneration != s.generation:
		return fsm.ErrGenerationMismatch
	case s.user.disabled:
		return fsm.ErrUserDisabled
	}
	return nil
}

func (h *history) checkRotation(c *fsm.RotateSession, res *fsm.Result) {
	h.t.Helper()
	if res == nil {
		h.failf("rotation of %v: got nil result, want *Result", c.SessionID)
	}
	want := h.expectedRotation(c)
	h.outcomes[want]++
	if !errors.Is(res.Err, want) {
		h.failf("rotation of %v from generation %d at %v: got error %v, want %v", c.SessionID, c.FromGeneration, c.At, res.Err, want)
	}
	if res.Err != nil {
		return
	}

	s := h.byID[c.SessionID]
	if s.rotatedFrom[c.FromGeneration] {
		h.failf("session %v: got a second successful rotation from generation %d, want at most one", s.id, c.FromGeneration)
	}
	if s.revoked {
		h.failf("session %v: got a successful rotation after its revocation, want %v", s.id, fsm.ErrSessionRevoked)
	}
	if !c.At.Before(s.deadline()) {
		h.failf("session %v: got a successful rotation at %v, want none at or after its deadline %v", s.id, c.At, s.deadline())
	}
	if res.Session == nil || res.Session.Generation != c.FromGeneration+1 {
		h.failf("session %v: got result %+v, want generation %d", s.id, res.Session, c.FromGeneration+1)
	}

	s.rotatedFrom[c.FromGeneration] = true
	s.generation++
	s.idle = c.IdleExpires
	if s.idle.After(s.expires) {
		s.idle = s.expires
	}
	h.rotates = append(h.rotates, c)
}

func (h *history) revokeSession() {
	h.t.Helper()
	s := h.pickSession()
	if s == nil {
		return
	}
	c := &fsm.RevokeSession{At: h.now, SessionID: s.id, Reason: fsm.ReasonLogout, DenyUntil: h.now.Add(randomDeny)}

	res := h.f.ApplyCommand(c)

	if s.dropped {
		if !errors.Is(res.Err, fsm.ErrSessionNotFound) {
			h.failf("revoke of dropped session %v: got error %v, want %v", s.id, res.Err, fsm.ErrSessionNotFound)
		}
		return
	}
	h.expectOK(res, "revoke session")
	var want []fsm.ID
	if !s.revoked {
		want = []fsm.ID{s.id}
		h.markRevoked(s, c.DenyUntil)
	}
	if !slices.Equal(res.Revoked, want) {
		h.failf("revoke of %v: got Revoked %v, want %v", s.id, res.Revoked, want)
	}
}

func (h *history) revokeUser() {
	h.t.Helper()
	u := h.users[h.rng.IntN(len(h.users))]
	var keep fsm.ID
	if len(u.sessions) > 0 && h.rng.IntN(2) == 0 {
		keep = u.sessions[h.rng.IntN(len(u.sessions))].id
	}
	c := &fsm.RevokeUserSessions{At: h.now, UserID: u.id, Keep: keep, Reason: fsm.ReasonUserWide, DenyUntil: h.now.Add(randomDeny)}

	res := h.f.ApplyCommand(c)

	h.expectOK(res, "revoke user sessions")
	want := h.revokeModelUser(u, keep, c.DenyUntil)
	if !slices.Equal(res.Revoked, want) {
		h.failf("revoke of user %v: got Revoked %v, want %v", u.id, res.Revoked, want)
	}
}

// revokeModelUser marks every live session of u except keep as revoked and
// returns their ids in creation order.
func (h *history) revokeModelUser(u *modelUser, keep fsm.ID, denyUntil time.Time) []fsm.ID {
	var revoked []fsm.ID
	for _, s := range u.sessions {
		if s.dropped || s.revoked || s.id == keep {
			continue
		}
		h.markRevoked(s, denyUntil)
		revoked = append(revoked, s.id)
	}
	return revoked
}

func (h *history) markRevoked(s *modelSession, denyUntil time.Time) {
	s.revoked = true
	s.denyUntil = denyUntil
}

func (h *history) toggleDisabled() {
	h.t.Helper()
	u := h.users[h.rng.IntN(len(h.users))]
	if !u.disabled && h.rng.IntN(2) == 0 {
		// Disable less often than enable, so that users are mostly enabled.
		return
	}
	c := &fsm.SetDisabled{At: h.now, UserID: u.id, Disabled: !u.disabled, DenyUntil: h.now.Add(randomDeny)}

	res := h.f.ApplyCommand(c)

	h.expectOK(res, "set disabled")
	var want []fsm.ID
	if c.Disabled {
		want = h.revokeModelUser(u, fsm.ID{}, c.DenyUntil)
	}
	u.disabled = c.Disabled
	u.version++
	if !slices.Equal(res.Revoked, want) {
		h.failf("disable of user %v: got Revoked %v, want %v", u.id, res.Revoked, want)
	}
	if res.User.CredentialVersion != u.version {
		h.failf("user %v CredentialVersion: got %d, want %d", u.id, res.User.CredentialVersion, u.version)
	}
}

func (h *history) createSession(u *modelUser) {
	h.t.Helper()
	s := &modelSession{
		id:          h.newID(),
		user:        u,
		generation:  1,
		idle:        h.now.Add(randomIdle),
		expires:     h.now.Add(randomAbsolute),
		rotatedFrom: make(map[uint64]bool),
	}
	c := &fsm.CreateSession{
		At: h.now, SessionID: s.id, UserID: u.id, Nonce: h.newID(),
		IdleExpires: s.idle, Expires: s.expires, CredentialVersion: u.version,
		DeviceID: "device", UserAgent: "rotor-test/1.0", IP: "192.0.2.1",
	}

	res := h.f.ApplyCommand(c)

	if u.disabled {
		if !errors.Is(res.Err, fsm.ErrUserDisabled) {
			h.failf("session for disabled user %v: got error %v, want %v", u.id, res.Err, fsm.ErrUserDisabled)
		}
		return
	}
	h.expectOK(res, "create session")
	h.sessions = append(h.sessions, s)
	h.byID[s.id] = s
	u.sessions = append(u.sessions, s)
}

// advanceClock moves the leader clock forward: mostly by seconds or minutes,
// sometimes past an idle deadline, rarely past an absolute one.
func (h *history) advanceClock() {
	switch n := h.rng.IntN(20); {
	case n < 14:
		h.now = h.now.Add(time.Duration(1+h.rng.IntN(600)) * time.Second)
	case n < 19:
		h.now = h.now.Add(time.Duration(30+h.rng.IntN(150)) * time.Minute)
	default:
		h.now = h.now.Add(time.Duration(6+h.rng.IntN(12)) * time.Hour)
	}
}

func (h *history) cleanup() {
	h.t.Helper()
	res := h.f.ApplyCommand(&fsm.Cleanup{At: h.now, RetiredBefore: h.now})

	h.expectOK(res, "cleanup")
	for _, s := range h.sessions {
		switch {
		case s.dropped:
		case s.revoked:
			s.dropped = !h.now.Before(s.denyUntil)
		default:
			s.dropped = !h.now.Before(s.deadline())
		}
	}
}

// checkState compares every session the history created, and every user's
// session list, with the model.
func (h *history) checkState() {
	h.t.Helper()
	for _, s := range h.sessions {
		got, found := h.f.Session(s.id)
		denied := h.f.Revocations().Denied(s.id)
		if s.dropped {
			if found {
				h.failf("dropped session %v: got %+v, want not found", s.id, got)
			}
			if denied {
				h.failf("dropped session %v: got a deny entry, want none", s.id)
			}
			continue
		}
		if !found {
			h.failf("session %v: got not found, want generation %d", s.id, s.generation)
		}
		if s.revoked && !got.Revoked {
			h.failf("revoked session %v: got live, want revoked", s.id)
		}
		if got.Revoked != s.revoked {
			h.failf("session %v Revoked: got %v, want %v", s.id, got.Revoked, s.revoked)
		}
		if denied != s.revoked {
			h.failf("session %v Denied: got %v, want %v", s.id, denied, s.revoked)
		}
		if got.Generation < s.generation {
			h.failf("session %v generation: got %d, want at least %d seen before", s.id, got.Generation, s.generation)
		}
		if got.Generation != s.generation {
			h.failf("session %v generation: got %d, want %d", s.id, got.Generation, s.generation)
		}
		if !got.Expires.Equal(s.expires) {
			h.failf("session %v Expires: got %v, want %v", s.id, got.Expires, s.expires)
		}
		if !got.IdleExpires.Equal(s.idle) {
			h.failf("session %v IdleExpires: got %v, want %v", s.id, got.IdleExpires, s.idle)
		}
	}
	for _, u := range h.users {
		var want []fsm.ID
		for _, s := range u.sessions {
			if !s.dropped {
				want = append(want, s.id)
			}
		}
		if got := sessionIDs(h.f.UserSessions(u.id)); !slices.Equal(got, want) {
			h.failf("UserSessions(%v): got %v, want %v", u.id, got, want)
		}
	}
}
