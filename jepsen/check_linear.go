package main

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// linearizableTimeout bounds the porcupine search over the whole history.
// Checking linearizability is NP-hard, and a search that runs out of time
// yields no verdict, which Linearizable reports as a failure.
var linearizableTimeout = 60 * time.Second

// sessionInput is the input of one operation on one session.
type sessionInput struct {
	f          string
	session    string
	generation uint64 // presented generation for a refresh
}

// sessionOutput is the observed result of one operation.
type sessionOutput struct {
	typ        string // ok, fail or info
	code       string
	generation uint64 // generation of the returned token for a login, or the one a read saw
	state      string // state in a read-session: live, revoked, expired or missing
}

// sessionState is the model of one session: whether a login has created it,
// its current generation and whether it is revoked.
type sessionState struct {
	created    bool
	generation uint64
	revoked    bool
}

// sessionModel is the sequential specification of one session. Each step
// returns every state that the operation may lead to, and none when the
// observed output is impossible:
//   - login ok creates the session at the returned generation;
//   - refresh ok of generation g needs a live session at g (rotation to g+1)
//     or at g+1 (grace replay, state unchanged). The model has no clock, so it
//     allows a replay of g at g+1 whenever it happens. The one-successor
//     checker and the API tests cover the grace window;
//   - refresh refresh_token_reused is possible on a revoked session, or for
//     a generation older than the current one, which revokes the session. A
//     replay of the previous generation may be inside or outside the grace
//     window, so both ok and reuse are allowed for it;
//   - refresh session_revoked needs a revoked session;
//   - logout ok and revoke-user ok revoke the session. A revoke-user ordered
//     before the login leaves the session alone;
//   - read-session ok (the final read after healing) returns the state as
//     it is: live or revoked at the model's generation, or missing when the
//     session was never created or was revoked (cleanup may have dropped it);
//   - any other fail has no effect, and an info operation either had no effect
//     or had the effect of an ok (or of a reuse answer for a refresh).
//
// NOTE: expiry is not modeled, so session_expired counts as a fail without
// effect, and an ok refresh after the deadline is not detected here.
var sessionModel = porcupine.NondeterministicModel{
	Partition: partitionBySession,
	Init: func() []any {
		return []any{sessionState{}}
	},
	Step: func(state, input, output any) []any {
		return stepSession(state.(sessionState), input.(sessionInput), output.(sessionOutput))
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(sessionInput), output.(sessionOutput)
		return fmt.Sprintf("%s(%d) -> %s %s", in.f, in.generation, out.typ, out.code)
	},
	DescribeState: func(state any) string {
		return fmt.Sprintf("%+v", state.(sessionState))
	},
}

func stepSession(s sessionState, in sessionInput, out sessionOutput) []any {
	switch in.f {
	case opLogin:
		return stepLogin(s, out)
	case opRefresh:
		return stepRefresh(s, in, out)
	case opLogout, opRevokeUser:
		return stepRevoke(s, in, out)
	case opReadSession:
		return stepRead(s, out)
	}
	return []any{s}
}

func stepRead(s sessionState, out sessionOutput) []any {
	if out.typ != typeOK {
		return []any{s}
	}
	var possible bool
	switch out.state {
	case stateLive:
		possible = s.created && !s.revoked && s.generation == out.generation
	case stateRevoked:
		possible = s.created && s.revoked && s.generation == out.generation
	case stateMissing:
		possible = !s.created || s.revoked
	default: // expired: expiry is not modeled
		possible = s.created
	}
	if !possible {
		return nil
	}
	return []any{s}
}

func stepLogin(s sessionState, out sessionOutput) []any {
	if s.created {
		return nil
	}
	generation := out.generation
	if generation == 0 {
		generation = 1 // a login starts a session at generation 1
	}
	created := sessionState{created: true, generation: generation}
	switch out.typ {
	case typeOK:
		return []any{created}
	case typeInfo:
		return []any{s, created}
	}
	return []any{s}
}

func stepRefresh(s sessionState, in sessionInput, out sessionOutput) []any {
	if !s.created {
		if out.typ == typeOK {
			return nil
		}
		return []any{s}
	}
	g := in.generation

	var rotated []any
	if !s.revoked && g == s.generation {
		rotated = append(rotated, sessionState{created: true, generation: g + 1})
	}
	if !s.revoked && g+1 == s.generation {
		rotated = append(rotated, s)
	}

	var reused []any
	if s.revoked {
		reused = append(reused, s)
	} else if g < s.generation {
		reused = append(reused, sessionState{created: true, generation: s.generation, revoked: true})
	}

	switch out.typ {
	case typeOK:
		return rotated
	case typeInfo:
		return append(append([]any{s}, rotated...), reused...)
	}
	switch out.code {
	case codeReused:
		return reused
	case codeRevoked:
		if s.revoked {
			return []any{s}
		}
		return nil
	}
	return []any{s}
}

func stepRevoke(s sessionState, in sessionInput, out sessionOutput) []any {
	if !s.created {
		if in.f == opLogout && out.typ == typeOK {
			return nil
		}
		return []any{s}
	}
	revoked := sessionState{created: true, generation: s.generation, revoked: true}
	switch out.typ {
	case typeOK:
		return []any{revoked}
	case typeInfo:
		return []any{s, revoked}
	}
	return []any{s}
}

func partitionBySession(history []porcupine.Operation) [][]porcupine.Operation {
	bySession := make(map[string][]porcupine.Operation)
	var order []string
	for _, op := range history {
		s := op.Input.(sessionInput).session
		if _, seen := bySession[s]; !seen {
			order = append(order, s)
		}
		bySession[s] = append(bySession[s], op)
	}
	out := make([][]porcupine.Operation, 0, len(order))
	for _, s := range order {
		out = append(out, bySession[s])
	}
	return out
}

// sessionHistory is the porcupine history of one session with the events
// each operation came from.
type sessionHistory struct {
	session string
	ops     []porcupine.Operation
	events  []Event
	source  []Op // the operation behind each entry of ops, but a synthetic login
}

// buildSessionHistories converts logins, refreshes, logouts and revoke-users
// into porcupine operations, one history per session. A revoke-user joins
// the history of every session of its user that it may cover. A session
// whose login is not in the history gets a synthetic login before every
// other operation, at the lowest generation any of its refreshes presents.
//
// NOTE: that synthetic start is a guess. If the session had already rotated
// past that generation before the history began, a correct history can look
// non-linearizable, so the harness should record every login.
func buildSessionHistories(ops []Op) []sessionHistory {
	idx := newSessionIndex(ops)
	histories := make(map[string]*sessionHistory)
	get := func(session string) *sessionHistory {
		h, ok := histories[session]
		if !ok {
			h = &sessionHistory{session: session}
			histories[session] = h
		}
		return h
	}
	add := func(session string, op Op) {
		h := get(session)
		generation := op.Completion.Generation
		if op.F() == opReadSession {
			generation = op.Completion.FinalGeneration
		}
		h.ops = append(h.ops, porcupine.Operation{
			ClientId: op.Invoke.Process,
			Input:    sessionInput{f: op.F(), session: session, generation: op.Invoke.Generation},
			Call:     op.CallTime(),
			Output:   sessionOutput{typ: op.Type(), code: op.Completion.Code, generation: generation, state: op.Completion.State},
			Return:   op.ReturnTime(),
		})
		h.events = append(h.events, op.Events()...)
		h.source = append(h.source, op)
	}

	for _, op := range ops {
		switch op.F() {
		case opLogin, opRefresh, opLogout, opReadSession:
			if op.Session() != "" {
				add(op.Session(), op)
			}
		}
	}
	for _, op := range ops {
		if op.F() != opRevokeUser {
			continue
		}
		for session := range histories {
			if idx.covers(op, session, false) {
				add(session, op)
			}
		}
	}

	sessions := make([]string, 0, len(histories))
	for s := range histories {
		sessions = append(sessions, s)
	}
	sort.Strings(sessions)

	out := make([]sessionHistory, 0, len(sessions))
	for _, s := range sessions {
		h := histories[s]
		if _, ok := idx.login[s]; !ok {
			h.ops = append(h.ops, syntheticLogin(h))
		}
		h.events = sortedEvents(h.events)
		out = append(out, *h)
	}
	return out
}

func syntheticLogin(h *sessionHistory) porcupine.Operation {
	var lowest uint64 = math.MaxUint64
	for _, op := range h.ops {
		in := op.Input.(sessionInput)
		if in.f == opRefresh && in.generation < lowest {
			lowest = in.generation
		}
	}
	if lowest == math.MaxUint64 {
		lowest = 1
	}
	return porcupine.Operation{
		ClientId: -1,
		Input:    sessionInput{f: opLogin, session: h.session},
		Call:     math.MinInt64,
		Output:   sessionOutput{typ: typeOK, generation: lowest},
		Return:   math.MinInt64,
	}
}

// Linearizable checks with porcupine that the operations on every session
// are linearizable with respect to sessionModel. Info operations get an
// infinite return time, so porcupine may place them anywhere after their
// invocation, and the model lets them take effect or not. On failure the
// counterexample is every event of the first session that fails.
func Linearizable(history []Event) Result {
	const name = "linearizable"
	ops, err := PairOps(history)
	if err != nil {
		return malformed(name, err)
	}
	sessions := buildSessionHistories(ops)
	model := sessionModel.ToModel()

	var all []porcupine.Operation
	for _, h := range sessions {
		all = append(all, h.ops...)
	}
	switch porcupine.CheckOperationsTimeout(model, all, linearizableTimeout) {
	case porcupine.Ok:
		return Result{Name: name, Valid: true, Detail: fmt.Sprintf("%d sessions, %d operations", len(sessions), len(all))}
	case porcupine.Unknown:
		return Result{Name: name, Valid: false,
			Detail: fmt.Sprintf("porcupine timed out after %s on %d operations, so the result is unknown", linearizableTimeout, len(all))}
	}

	// Check the sessions one by one to name the ones that failed.
	var failed []sessionHistory
	for _, h := range sessions {
		if porcupine.CheckOperationsTimeout(model, h.ops, linearizableTimeout) != porcupine.Ok {
			failed = append(failed, h)
		}
	}
	if len(failed) == 0 {
		return Result{Name: name, Valid: false, Detail: "porcupine found the history illegal but no single session fails on its own"}
	}
	events, prefix := shortestFailingPrefix(model, failed[0])
	return Result{
		Name:           name,
		Valid:          false,
		Counterexample: events,
		Detail: fmt.Sprintf("%d of %d sessions are not linearizable; first: session %s, whose first %d of %d operations already are not",
			len(failed), len(sessions), failed[0].session, prefix, len(failed[0].source)),
	}
}

// shortestFailingPrefix shrinks a failing session history to its shortest
// prefix that still fails, and returns that prefix's events and operation
// count. A prefix is cut only where no operation that completed is open, so
// its failure is a real one.
func shortestFailingPrefix(model porcupine.Model, h sessionHistory) ([]Event, int) {
	order := make([]int, len(h.source))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return h.source[order[a]].CallTime() < h.source[order[b]].CallTime() })
	synthetic := h.ops[len(h.source):] // a synthetic login, if any, comes last

	// Cuts: after the k-th operation when every one of the first k that
	// completed ok or fail has returned before the next is invoked. An info
	// operation may stay open across a cut: it may always be placed last
	// without effect, so a linearization of the whole history still gives
	// one of the prefix.
	var cuts []int
	var lastReturn int64 = math.MinInt64
	for k, i := range order {
		if h.source[i].Type() != typeInfo {
			lastReturn = max(lastReturn, h.source[i].ReturnTime())
		}
		if k+1 == len(order) || lastReturn < h.source[order[k+1]].CallTime() {
			cuts = append(cuts, k+1)
		}
	}
	fails := func(k int) bool {
		ops := append([]porcupine.Operation(nil), synthetic...)
		for _, i := range order[:k] {
			ops = append(ops, h.ops[i])
		}
		return porcupine.CheckOperationsTimeout(model, ops, linearizableTimeout) != porcupine.Ok
	}
	// Failure is monotone over cuts, so binary search finds the first.
	lo, hi := 0, len(cuts)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if fails(cuts[mid]) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	k := cuts[lo]
	var events []Event
	for _, i := range order[:k] {
		events = append(events, h.source[i].Events()...)
	}
	return sortedEvents(events), k
}
