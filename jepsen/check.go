package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// Result is the verdict of one checker on one history.
type Result struct {
	Name  string
	Valid bool
	// Counterexample is the smallest set of events that shows the first
	// violation found, in history order. It is empty when Valid is true.
	Counterexample []Event
	Detail         string
}

// Checker checks one property of a history.
type Checker struct {
	Name  string
	Check func(history []Event) Result
}

// Checkers lists every checker in the order Summarize prints them.
var Checkers = []Checker{
	{"one-successor", OneSuccessor},
	{"no-refresh-after-revocation", NoRefreshAfterRevocation},
	{"honest-never-reused", HonestNeverReused},
	{"no-lost-writes", NoLostWrites},
	{"linearizable", Linearizable},
}

// CheckAll runs every checker in Checkers on the history.
func CheckAll(history []Event) []Result {
	results := make([]Result, 0, len(Checkers))
	for _, c := range Checkers {
		results = append(results, c.Check(history))
	}
	return results
}

// violations collects the violations one checker finds and keeps the first
// one's events as the counterexample.
type violations struct {
	name   string
	count  int
	first  []Event
	detail string
}

func (v *violations) add(detail string, events ...Event) {
	v.count++
	if v.count == 1 {
		v.first = sortedEvents(events)
		v.detail = detail
	}
}

func (v *violations) result(checked string) Result {
	if v.count == 0 {
		return Result{Name: v.name, Valid: true, Detail: checked}
	}
	return Result{
		Name:           v.name,
		Valid:          false,
		Counterexample: v.first,
		Detail:         fmt.Sprintf("%d violations; first: %s", v.count, v.detail),
	}
}

func sortedEvents(events []Event) []Event {
	out := append([]Event(nil), events...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}

func malformed(name string, err error) Result {
	return Result{Name: name, Valid: false, Detail: err.Error()}
}

// OneSuccessor checks that every ok refresh of one (session, generation)
// returned the same successor token, whether it rotated or replayed.
func OneSuccessor(history []Event) Result {
	const name = "one-successor"
	ops, err := PairOps(history)
	if err != nil {
		return malformed(name, err)
	}

	type key struct {
		session    string
		generation uint64
	}
	first := make(map[key]Op)
	v := violations{name: name}
	for _, op := range ops {
		if op.F() != opRefresh || op.Type() != typeOK {
			continue
		}
		k := key{op.Session(), op.Invoke.Generation}
		prev, seen := first[k]
		if !seen {
			first[k] = op
			continue
		}
		if prev.Completion.Successor != op.Completion.Successor {
			v.add(fmt.Sprintf("session %s generation %d got successors %s (event %d) and %s (event %d)",
				k.session, k.generation, prev.Completion.Successor, prev.Completion.Index,
				op.Completion.Successor, op.Completion.Index),
				append(prev.Events(), op.Events()...)...)
		}
	}
	return v.result(fmt.Sprintf("%d (session, generation) pairs refreshed", len(first)))
}

// sessionIndex records which user owns each session and how each session
// was created, to decide which sessions a user-wide revocation covers.
type sessionIndex struct {
	owner map[string]string // session -> user
	login map[string]Op     // session -> the login that created it
}

func newSessionIndex(ops []Op) sessionIndex {
	idx := sessionIndex{owner: make(map[string]string), login: make(map[string]Op)}
	for _, op := range ops {
		s, u := op.Session(), op.User()
		if s != "" && u != "" {
			idx.owner[s] = u
		}
		if op.F() == opLogin && op.Type() != typeFail && s != "" {
			idx.login[s] = op
		}
	}
	return idx
}

// covers reports whether the revocation ends the session. A logout covers
// its own session. A revoke-user covers the user's sessions that exist when
// it takes effect, and a login concurrent with it may or may not be covered.
// With certain set, covers returns true only when the login completed before
// the revocation was invoked. Without it, covers returns true unless the
// login was invoked after the revocation completed. A session with no recorded login
// existed before the history began, so every revocation of its user covers it.
func (idx sessionIndex) covers(rev Op, session string, certain bool) bool {
	switch rev.F() {
	case opLogout:
		return rev.Session() == session
	case opRevokeUser:
		if rev.User() == "" || idx.owner[session] != rev.User() {
			return false
		}
		login, ok := idx.login[session]
		if !ok {
			return true
		}
		if certain {
			return login.Type() == typeOK && login.ReturnTime() < rev.CallTime()
		}
		return login.CallTime() <= rev.ReturnTime()
	}
	return false
}

func isRevocation(op Op) bool {
	return op.F() == opLogout || op.F() == opRevokeUser
}

// revokedByRefresh reports whether a refresh's completion shows its session
// revoked: reuse detection revokes the session before it responds, and
// session_revoked means it already was.
func revokedByRefresh(op Op) bool {
	return op.F() == opRefresh && op.Type() == typeFail &&
		(op.Completion.Code == codeReused || op.Completion.Code == codeRevoked)
}

// NoRefreshAfterRevocation checks that no refresh invoked after a revocation
// of its session completed returned ok. Revocations are ok logouts, ok
// revoke-users of the session's user, and refreshes of the session that
// returned refresh_token_reused or session_revoked. Order is real time by Event.Time.
func NoRefreshAfterRevocation(history []Event) Result {
	const name = "no-refresh-after-revocation"
	ops, err := PairOps(history)
	if err != nil {
		return malformed(name, err)
	}
	idx := newSessionIndex(ops)

	var revocations []Op
	for _, op := range ops {
		if (isRevocation(op) && op.Type() == typeOK) || revokedByRefresh(op) {
			revocations = append(revocations, op)
		}
	}

	v := violations{name: name}
	refreshes := 0
	for _, op := range ops {
		if op.F() != opRefresh || op.Type() != typeOK {
			continue
		}
		refreshes++
		session := op.Session()
		for _, rev := range revocations {
			if rev.ReturnTime() >= op.CallTime() {
				continue
			}
			coveredByRefresh := rev.F() == opRefresh && rev.Session() == session
			if !coveredByRefresh && !idx.covers(rev, session, true) {
				continue
			}
			v.add(fmt.Sprintf("refresh of session %s invoked at %d (event %d) returned ok after %s completed at %d (event %d)",
				session, op.CallTime(), op.Invoke.Index, rev.F(), rev.Completion.Time, rev.Completion.Index),
				rev.Completion, op.Invoke, op.Completion)
			break
		}
	}
	return v.result(fmt.Sprintf("%d ok refreshes against %d revocations", refreshes, len(revocations)))
}

// HonestNeverReused checks that an honest client never receives
// refresh_token_reused or session_revoked unless something may have revoked
// its session before that response. Such a cause is a logout or revoke-user
// with an ok or info completion, or a purposeful operation on the session,
// invoked before the response arrived.
func HonestNeverReused(history []Event) Result {
	const name = "honest-never-reused"
	ops, err := PairOps(history)
	if err != nil {
		return malformed(name, err)
	}
	idx := newSessionIndex(ops)

	var causes []Op
	for _, op := range ops {
		possible := op.Type() != typeFail || revokedByRefresh(op)
		if possible && (isRevocation(op) || op.Invoke.Purposeful) {
			causes = append(causes, op)
		}
	}

	v := violations{name: name}
	honest := 0
	for _, op := range ops {
		if !op.Invoke.Honest || op.Type() != typeFail {
			continue
		}
		honest++
		code := op.Completion.Code
		if code != codeReused && code != codeRevoked {
			continue
		}
		session := op.Session()
		explained := false
		for _, c := range causes {
			if c.CallTime() >= op.Completion.Time {
				continue
			}
			if c.Session() == session || idx.covers(c, session, false) {
				explained = true
				break
			}
		}
		if !explained {
			v.add(fmt.Sprintf("honest process %d got %s for session %s (event %d) with no revocation invoked before it",
				op.Invoke.Process, code, session, op.Completion.Index),
				op.Events()...)
		}
	}
	return v.result(fmt.Sprintf("%d failed honest operations, %d possible revocations", honest, len(causes)))
}

// NoLostWrites checks the final read-session of each session against the
// writes acknowledged before that read was invoked:
//   - a session whose login returned ok is not missing, unless a revocation
//     may have ended it and cleanup then dropped it;
//   - a session that an ok revocation certainly covers is not live;
//   - a session refreshed ok from generation g is at generation g+1 or later,
//     because the ok proves that the rotation from g committed.
//
// Sessions without a final read are not checked, and the Detail counts them.
func NoLostWrites(history []Event) Result {
	const name = "no-lost-writes"
	ops, err := PairOps(history)
	if err != nil {
		return malformed(name, err)
	}
	idx := newSessionIndex(ops)

	reads := make(map[string]Op) // session -> its last ok read
	for _, op := range ops {
		if op.F() != opReadSession || op.Type() != typeOK {
			continue
		}
		if prev, ok := reads[op.Session()]; !ok || prev.CallTime() < op.CallTime() {
			reads[op.Session()] = op
		}
	}

	v := violations{name: name}
	unchecked := make(map[string]bool)
	for _, op := range ops {
		if op.Type() != typeOK {
			continue
		}
		switch op.F() {
		case opLogin:
			checkLogin(&v, op, ops, idx, reads, unchecked)
		case opRefresh:
			checkRefreshDurable(&v, op, reads, unchecked)
		case opLogout, opRevokeUser:
			checkRevocationDurable(&v, op, idx, reads)
		}
	}
	return v.result(fmt.Sprintf("%d sessions read at the end, %d written sessions not read", len(reads), len(unchecked)))
}

// finalRead returns the session's last read when it was invoked after the
// write completed, so the write must be visible in it.
func finalRead(reads map[string]Op, session string, write Op) (Op, bool) {
	read, ok := reads[session]
	if !ok || read.CallTime() <= write.ReturnTime() {
		return Op{}, false
	}
	return read, true
}

func checkLogin(v *violations, login Op, ops []Op, idx sessionIndex, reads map[string]Op, unchecked map[string]bool) {
	session := login.Session()
	read, ok := finalRead(reads, session, login)
	if !ok {
		unchecked[session] = true
		return
	}
	if read.Completion.State != stateMissing {
		return
	}
	for _, op := range ops {
		maybeRevoked := (isRevocation(op) && op.Type() != typeFail && idx.covers(op, session, false)) ||
			(revokedByRefresh(op) && op.Session() == session)
		if maybeRevoked {
			return
		}
	}
	v.add(fmt.Sprintf("session %s from the ok login at event %d is missing in the final read at event %d",
		session, login.Completion.Index, read.Completion.Index),
		append(login.Events(), read.Events()...)...)
}

func checkRefreshDurable(v *violations, refresh Op, reads map[string]Op, unchecked map[string]bool) {
	session := refresh.Session()
	read, ok := finalRead(reads, session, refresh)
	if !ok {
		unchecked[session] = true
		return
	}
	state := read.Completion.State
	if state != stateLive && state != stateRevoked {
		return
	}
	want := refresh.Invoke.Generation + 1
	if got := read.Completion.FinalGeneration; got < want {
		v.add(fmt.Sprintf("session %s is at generation %d in the final read at event %d, want at least %d after the ok refresh at event %d",
			session, got, read.Completion.Index, want, refresh.Completion.Index),
			append(refresh.Events(), read.Events()...)...)
	}
}

func checkRevocationDurable(v *violations, rev Op, idx sessionIndex, reads map[string]Op) {
	sessions := make([]string, 0, len(reads))
	for s := range reads {
		sessions = append(sessions, s)
	}
	sort.Strings(sessions)

	for _, session := range sessions {
		if !idx.covers(rev, session, true) {
			continue
		}
		read, ok := finalRead(reads, session, rev)
		if !ok || read.Completion.State != stateLive {
			continue
		}
		v.add(fmt.Sprintf("session %s is live in the final read at event %d after the ok %s at event %d",
			session, read.Completion.Index, rev.F(), rev.Completion.Index),
			append(rev.Events(), read.Events()...)...)
	}
}

// maxCounterexampleLines bounds how many events Summarize prints per checker.
const maxCounterexampleLines = 8

// Summarize prints each checker's verdict and the end of its
// counterexample, then a last line "N passed, M failed". It returns M.
func Summarize(results []Result, w io.Writer) (failed int) {
	passed := 0
	for _, r := range results {
		if r.Valid {
			passed++
			fmt.Fprintf(w, "PASS %s: %s\n", r.Name, r.Detail)
			continue
		}
		failed++
		fmt.Fprintf(w, "FAIL %s: %s\n", r.Name, r.Detail)
		// The end of a counterexample is where the violation shows.
		events := r.Counterexample
		if skipped := len(events) - maxCounterexampleLines; skipped > 0 {
			fmt.Fprintf(w, "    ... %d earlier events\n", skipped)
			events = events[skipped:]
		}
		for _, e := range events {
			fmt.Fprintf(w, "    %s\n", describeEvent(e))
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", passed, failed)
	return failed
}

// describeEvent formats an event on one line with its non-empty fields.
func describeEvent(e Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d t=%d p%d %s %s", e.Index, e.Time, e.Process, e.Type, e.F)
	field := func(name, value string) {
		if value != "" {
			fmt.Fprintf(&b, " %s=%s", name, value)
		}
	}
	field("node", e.Node)
	field("session", e.Session)
	field("user", e.User)
	if e.Generation != 0 {
		fmt.Fprintf(&b, " gen=%d", e.Generation)
	}
	field("token", e.Token)
	field("successor", e.Successor)
	field("code", e.Code)
	field("state", e.State)
	if e.FinalGeneration != 0 {
		fmt.Fprintf(&b, " final_gen=%d", e.FinalGeneration)
	}
	return b.String()
}
