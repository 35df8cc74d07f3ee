package main

import (
	"bytes"
	"strings"
	"testing"
)

// checkCase is a hand-built history and the verdict a checker must give.
// want lists the event indices the counterexample must contain.
type checkCase struct {
	name    string
	history []Event
	valid   bool
	want    []int
}

func runCheckCases(t *testing.T, check func([]Event) Result, cases []checkCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := check(c.history)
			if r.Valid != c.valid {
				t.Fatalf("got valid=%v (%s), want %v", r.Valid, r.Detail, c.valid)
			}
			if c.valid && len(r.Counterexample) != 0 {
				t.Errorf("got counterexample %v, want none", r.Counterexample)
			}
			found := make(map[int]bool)
			for _, e := range r.Counterexample {
				found[e.Index] = true
			}
			for _, i := range c.want {
				if !found[i] {
					t.Errorf("counterexample %v lacks event %d", r.Counterexample, i)
				}
			}
		})
	}
}

func TestCheckOneSuccessor(t *testing.T) {
	runCheckCases(t, OneSuccessor, []checkCase{
		{"same successor", hist(
			ev(1, typeInvoke, opRefresh, 1, sess("s1"), gen(1)),
			ev(2, typeInvoke, opRefresh, 2, sess("s1"), gen(1)),
			ev(1, typeOK, opRefresh, 3, succ("aa")),
			ev(2, typeOK, opRefresh, 4, succ("aa")),
		), true, nil},
		{"different generations", hist(
			ev(1, typeInvoke, opRefresh, 1, sess("s1"), gen(1)),
			ev(1, typeOK, opRefresh, 2, succ("aa")),
			ev(1, typeInvoke, opRefresh, 3, sess("s1"), gen(2)),
			ev(1, typeOK, opRefresh, 4, succ("bb")),
		), true, nil},
		{"two successors", hist(
			ev(1, typeInvoke, opRefresh, 1, sess("s1"), gen(1)),
			ev(2, typeInvoke, opRefresh, 2, sess("s1"), gen(1)),
			ev(1, typeOK, opRefresh, 3, succ("aa")),
			ev(2, typeOK, opRefresh, 4, succ("bb")),
		), false, []int{0, 1, 2, 3}},
		{"info does not count", hist(
			ev(1, typeInvoke, opRefresh, 1, sess("s1"), gen(1)),
			ev(2, typeInvoke, opRefresh, 2, sess("s1"), gen(1)),
			ev(1, typeOK, opRefresh, 3, succ("aa")),
			ev(2, typeInfo, opRefresh, 4),
		), true, nil},
	})
}

func TestCheckNoRefreshAfterRevocation(t *testing.T) {
	runCheckCases(t, NoRefreshAfterRevocation, []checkCase{
		{"concurrent logout", hist(
			ev(1, typeInvoke, opLogout, 1, sess("s1")),
			ev(2, typeInvoke, opRefresh, 2, sess("s1"), gen(1)),
			ev(1, typeOK, opLogout, 3),
			ev(2, typeOK, opRefresh, 4, succ("aa")),
		), true, nil},
		{"refresh after logout", hist(
			ev(1, typeInvoke, opLogout, 1, sess("s1")),
			ev(1, typeOK, opLogout, 2),
			ev(2, typeInvoke, opRefresh, 3, sess("s1"), gen(1)),
			ev(2, typeOK, opRefresh, 4, succ("aa")),
		), false, []int{1, 2, 3}},
		{"refresh after revoke-user", hist(
			ev(1, typeInvoke, opLogin, 1, user("u1")),
			ev(1, typeOK, opLogin, 2, sess("s1"), gen(1)),
			ev(3, typeInvoke, opRevokeUser, 3, user("u1")),
			ev(3, typeOK, opRevokeUser, 4),
			ev(1, typeInvoke, opRefresh, 5, sess("s1"), gen(1)),
			ev(1, typeOK, opRefresh, 6, succ("aa")),
		), false, []int{3, 4, 5}},
		{"login after revoke-user", hist(
			ev(3, typeInvoke, opRevokeUser, 1, user("u1")),
			ev(3, typeOK, opRevokeUser, 2),
			ev(1, typeInvoke, opLogin, 3, user("u1")),
			ev(1, typeOK, opLogin, 4, sess("s2"), gen(1)),
			ev(1, typeInvoke, opRefresh, 5, sess("s2"), gen(1)),
			ev(1, typeOK, opRefresh, 6, succ("aa")),
		), true, nil},
		{"refresh after reuse", hist(
			ev(1, typeInvoke, opRefresh, 1, sess("s1"), gen(1)),
			ev(1, typeFail, opRefresh, 2, code(codeReused)),
			ev(2, typeInvoke, opRefresh, 3, sess("s1"), gen(2)),
			ev(2, typeOK, opRefresh, 4, succ("aa")),
		), false, []int{1, 2, 3}},
		{"other session", hist(
			ev(1, typeInvoke, opLogout, 1, sess("s1")),
			ev(1, typeOK, opLogout, 2),
			ev(2, typeInvoke, opRefresh, 3, sess("s2"), gen(1)),
			ev(2, typeOK, opRefresh, 4, succ("aa")),
		), true, nil},
	})
}

func TestCheckHonestNeverReused(t *testing.T) {
	runCheckCases(t, HonestNeverReused, []checkCase{
		{"after info logout", hist(
			ev(1, typeInvoke, opLogout, 1, sess("s1")),
			ev(2, typeInvoke, opRefresh, 2, sess("s1"), gen(1), honest()),
			ev(1, typeInfo, opLogout, 3),
			ev(2, typeFail, opRefresh, 4, code(codeRevoked)),
		), true, nil},
		{"after purposeful replay", hist(
			ev(1, typeInvoke, opRefresh, 1, sess("s1"), gen(1), purposeful()),
			ev(1, typeFail, opRefresh, 2, code(codeReused)),
			ev(2, typeInvoke, opRefresh, 3, sess("s1"), gen(3), honest()),
			ev(2, typeFail, opRefresh, 4, code(codeRevoked)),
		), true, nil},
		{"after revoke-user", hist(
			ev(3, typeInvoke, opRevokeUser, 1, user("u1")),
			ev(3, typeOK, opRevokeUser, 2),
			ev(2, typeInvoke, opRefresh, 3, sess("s1"), user("u1"), gen(1), honest()),
			ev(2, typeFail, opRefresh, 4, code(codeReused)),
		), true, nil},
		{"no revocation", hist(
			ev(2, typeInvoke, opRefresh, 1, sess("s1"), gen(1), honest()),
			ev(2, typeFail, opRefresh, 2, code(codeReused)),
		), false, []int{0, 1}},
		{"revocation invoked later", hist(
			ev(2, typeInvoke, opRefresh, 1, sess("s1"), gen(1), honest()),
			ev(2, typeFail, opRefresh, 2, code(codeRevoked)),
			ev(1, typeInvoke, opLogout, 3, sess("s1")),
			ev(1, typeOK, opLogout, 4),
		), false, []int{0, 1}},
		{"failed logout", hist(
			ev(1, typeInvoke, opLogout, 1, sess("s1")),
			ev(1, typeFail, opLogout, 2, code("unavailable")),
			ev(2, typeInvoke, opRefresh, 3, sess("s1"), gen(1), honest()),
			ev(2, typeFail, opRefresh, 4, code(codeReused)),
		), false, []int{2, 3}},
		{"dishonest client", hist(
			ev(2, typeInvoke, opRefresh, 1, sess("s1"), gen(1)),
			ev(2, typeFail, opRefresh, 2, code(codeReused)),
		), true, nil},
	})
}

func TestCheckNoLostWrites(t *testing.T) {
	login := []Event{
		ev(1, typeInvoke, opLogin, 1, user("u1")),
		ev(1, typeOK, opLogin, 2, sess("s1"), gen(1)),
		ev(1, typeInvoke, opRefresh, 3, sess("s1"), gen(1)),
		ev(1, typeOK, opRefresh, 4, succ("aa")),
	}
	withRead := func(extra ...Event) []Event {
		events := append(append([]Event(nil), login...), extra...)
		return hist(events...)
	}
	read := func(time int64, state string, generation uint64) []Event {
		return []Event{
			ev(9, typeInvoke, opReadSession, time, sess("s1")),
			ev(9, typeOK, opReadSession, time+1, sess("s1"), final(state, generation)),
		}
	}

	runCheckCases(t, NoLostWrites, []checkCase{
		{"live at generation 2", withRead(read(10, stateLive, 2)...), true, nil},
		{"lost login", withRead(read(10, stateMissing, 0)...), false, []int{1, 5}},
		{"lost rotation", withRead(read(10, stateLive, 1)...), false, []int{3, 5}},
		{"missing after logout", withRead(append([]Event{
			ev(2, typeInvoke, opLogout, 5, sess("s1")),
			ev(2, typeOK, opLogout, 6),
		}, read(10, stateMissing, 0)...)...), true, nil},
		{"live after logout", withRead(append([]Event{
			ev(2, typeInvoke, opLogout, 5, sess("s1")),
			ev(2, typeOK, opLogout, 6),
		}, read(10, stateLive, 2)...)...), false, []int{5, 7}},
		{"live after revoke-user", withRead(append([]Event{
			ev(2, typeInvoke, opRevokeUser, 5, user("u1")),
			ev(2, typeOK, opRevokeUser, 6),
		}, read(10, stateLive, 2)...)...), false, []int{5, 7}},
		{"revoked at generation 2", withRead(append([]Event{
			ev(2, typeInvoke, opLogout, 5, sess("s1")),
			ev(2, typeOK, opLogout, 6),
		}, read(10, stateRevoked, 2)...)...), true, nil},
		{"expired", withRead(read(10, stateExpired, 0)...), true, nil},
		{"no final read", withRead(), true, nil},
	})
}

func TestLinearizable(t *testing.T) {
	runCheckCases(t, Linearizable, []checkCase{
		{"rotate twice", hist(
			ev(1, typeInvoke, opLogin, 1, user("u1")),
			ev(1, typeOK, opLogin, 2, sess("s1"), gen(1)),
			ev(1, typeInvoke, opRefresh, 3, sess("s1"), gen(1)),
			ev(1, typeOK, opRefresh, 4),
			ev(1, typeInvoke, opRefresh, 5, sess("s1"), gen(2)),
			ev(1, typeOK, opRefresh, 6),
		), true, nil},
		{"concurrent grace replays", hist(
			ev(1, typeInvoke, opRefresh, 1, sess("s1"), gen(4)),
			ev(2, typeInvoke, opRefresh, 2, sess("s1"), gen(4)),
			ev(3, typeInvoke, opRefresh, 3, sess("s1"), gen(4)),
			ev(2, typeOK, opRefresh, 4),
			ev(1, typeOK, opRefresh, 5),
			ev(3, typeOK, opRefresh, 6),
		), true, nil},
		{"retry after info", hist(
			ev(1, typeInvoke, opRefresh, 1, sess("s1"), gen(1)),
			ev(1, typeInfo, opRefresh, 2),
			ev(1, typeInvoke, opRefresh, 3, sess("s1"), gen(1)),
			ev(1, typeOK, opRefresh, 4),
			ev(1, typeInvoke, opRefresh, 5, sess("s1"), gen(2)),
			ev(1, typeOK, opRefresh, 6),
		), true, nil},
		{"open logout", hist(
			ev(1, typeInvoke, opRefresh, 1, sess("s1"), gen(1)),
			ev(1, typeOK, opRefresh, 2),
			ev(2, typeInvoke, opLogout, 3, sess("s1")),
			ev(1, typeInvoke, opRefresh, 4, sess("s1"), gen(2)),
			ev(1, typeFail, opRefresh, 5, code(codeRevoked)),
		), true, nil},
		{"stale generation ok", hist(
			ev(1, typeInvoke, opRefresh, 1, sess("s1"), gen(1)),
			ev(1, typeOK, opRefresh, 2),
			ev(1, typeInvoke, opRefresh, 3, sess("s1"), gen(2)),
			ev(1, typeOK, opRefresh, 4),
			ev(1, typeInvoke, opRefresh, 5, sess("s1"), gen(1)),
			ev(1, typeOK, opRefresh, 6),
		), false, []int{0, 1, 2, 3, 4, 5}},
		{"ok after logout", hist(
			ev(1, typeInvoke, opLogout, 1, sess("s1")),
			ev(1, typeOK, opLogout, 2),
			ev(2, typeInvoke, opRefresh, 3, sess("s1"), gen(1)),
			ev(2, typeOK, opRefresh, 4),
		), false, []int{0, 1, 2, 3}},
		{"current token reused", hist(
			ev(1, typeInvoke, opLogin, 1, user("u1")),
			ev(1, typeOK, opLogin, 2, sess("s1"), gen(1)),
			ev(1, typeInvoke, opRefresh, 3, sess("s1"), gen(1)),
			ev(1, typeFail, opRefresh, 4, code(codeReused)),
		), false, []int{0, 1, 2, 3}},
		{"revoked without revocation", hist(
			ev(1, typeInvoke, opRefresh, 1, sess("s1"), gen(1)),
			ev(1, typeFail, opRefresh, 2, code(codeRevoked)),
		), false, []int{0, 1}},
		{"one bad session of two", hist(
			ev(1, typeInvoke, opRefresh, 1, sess("good"), gen(1)),
			ev(1, typeOK, opRefresh, 2),
			ev(2, typeInvoke, opLogout, 3, sess("bad")),
			ev(2, typeOK, opLogout, 4),
			ev(2, typeInvoke, opRefresh, 5, sess("bad"), gen(1)),
			ev(2, typeOK, opRefresh, 6),
		), false, []int{2, 3, 4, 5}},
		{"final read sees the rotation", hist(
			ev(1, typeInvoke, opLogin, 1, user("u1")),
			ev(1, typeOK, opLogin, 2, sess("s1"), gen(1)),
			ev(1, typeInvoke, opRefresh, 3, sess("s1"), gen(1)),
			ev(1, typeOK, opRefresh, 4),
			ev(9, typeInvoke, opReadSession, 5, sess("s1")),
			ev(9, typeOK, opReadSession, 6, final(stateLive, 2)),
		), true, nil},
		{"final read lost the rotation", hist(
			ev(1, typeInvoke, opLogin, 1, user("u1")),
			ev(1, typeOK, opLogin, 2, sess("s1"), gen(1)),
			ev(1, typeInvoke, opRefresh, 3, sess("s1"), gen(1)),
			ev(1, typeOK, opRefresh, 4),
			ev(9, typeInvoke, opReadSession, 5, sess("s1")),
			ev(9, typeOK, opReadSession, 6, final(stateLive, 1)),
		), false, []int{2, 3, 4, 5}},
		{"final read missing after logout", hist(
			ev(1, typeInvoke, opLogin, 1, user("u1")),
			ev(1, typeOK, opLogin, 2, sess("s1"), gen(1)),
			ev(2, typeInvoke, opLogout, 3, sess("s1")),
			ev(2, typeOK, opLogout, 4),
			ev(9, typeInvoke, opReadSession, 5, sess("s1")),
			ev(9, typeOK, opReadSession, 6, final(stateMissing, 0)),
		), true, nil},
		{"shortest failing prefix", hist(
			ev(1, typeInvoke, opLogin, 1, user("u1")),
			ev(1, typeOK, opLogin, 2, sess("s1"), gen(1)),
			ev(1, typeInvoke, opRefresh, 3, sess("s1"), gen(1)),
			ev(1, typeFail, opRefresh, 4, code(codeRevoked)),
			ev(1, typeInvoke, opRefresh, 5, sess("s1"), gen(1)),
			ev(1, typeOK, opRefresh, 6),
			ev(1, typeInvoke, opRefresh, 7, sess("s1"), gen(2)),
			ev(1, typeOK, opRefresh, 8),
		), false, []int{0, 1, 2, 3}},
		{"revoke-user before login", hist(
			ev(3, typeInvoke, opRevokeUser, 1, user("u1")),
			ev(1, typeInvoke, opLogin, 2, user("u1")),
			ev(3, typeOK, opRevokeUser, 3),
			ev(1, typeOK, opLogin, 4, sess("s1"), gen(1)),
			ev(1, typeInvoke, opRefresh, 5, sess("s1"), gen(1)),
			ev(1, typeOK, opRefresh, 6),
		), true, nil},
	})
}

func TestLinearizableShortestPrefix(t *testing.T) {
	h := hist(
		ev(1, typeInvoke, opLogin, 1, user("u1")),
		ev(1, typeOK, opLogin, 2, sess("s1"), gen(1)),
		ev(1, typeInvoke, opRefresh, 3, sess("s1"), gen(1)),
		ev(1, typeFail, opRefresh, 4, code(codeRevoked)),
		ev(1, typeInvoke, opRefresh, 5, sess("s1"), gen(1)),
		ev(1, typeOK, opRefresh, 6),
	)
	r := Linearizable(h)
	if r.Valid || len(r.Counterexample) != 4 {
		t.Fatalf("got valid=%v with %d events (%s), want the 4 events up to the impossible session_revoked",
			r.Valid, len(r.Counterexample), r.Detail)
	}
}

func TestLinearizablePrefixCutsAcrossInfo(t *testing.T) {
	h := hist(
		ev(1, typeInvoke, opLogin, 1, user("u1")),
		ev(1, typeOK, opLogin, 2, sess("s1"), gen(1)),
		ev(2, typeInvoke, opRefresh, 3, sess("s1"), gen(1)),
		ev(2, typeInfo, opRefresh, 4),
		ev(1, typeInvoke, opRefresh, 5, sess("s1"), gen(1)),
		ev(1, typeOK, opRefresh, 6),
		ev(1, typeInvoke, opRefresh, 7, sess("s1"), gen(2)),
		ev(1, typeFail, opRefresh, 8, code(codeRevoked)),
		ev(1, typeInvoke, opRefresh, 9, sess("s1"), gen(2)),
		ev(1, typeOK, opRefresh, 10),
		ev(1, typeInvoke, opRefresh, 11, sess("s1"), gen(3)),
		ev(1, typeOK, opRefresh, 12),
	)
	// The open refresh may have arrived late as reuse, which explains the
	// session_revoked; the ok refresh after it cannot be explained.
	r := Linearizable(h)
	if r.Valid || len(r.Counterexample) != 10 {
		t.Fatalf("got valid=%v with %d events (%s), want the 10 events up to the ok refresh of a revoked session",
			r.Valid, len(r.Counterexample), r.Detail)
	}
}

func TestLinearizableCounterexampleOneSession(t *testing.T) {
	h := hist(
		ev(1, typeInvoke, opRefresh, 1, sess("good"), gen(1)),
		ev(1, typeOK, opRefresh, 2),
		ev(2, typeInvoke, opRefresh, 3, sess("bad"), gen(1)),
		ev(2, typeFail, opRefresh, 4, code(codeRevoked)),
	)
	r := Linearizable(h)
	for _, e := range r.Counterexample {
		if e.Session == "good" {
			t.Errorf("counterexample contains event %d of a valid session", e.Index)
		}
	}
}

func TestSummarize(t *testing.T) {
	results := []Result{
		{Name: "a", Valid: true, Detail: "fine"},
		{Name: "b", Valid: false, Detail: "broken", Counterexample: hist(
			ev(1, typeInvoke, opRefresh, 1, sess("s1"), gen(1)),
			ev(1, typeOK, opRefresh, 2, succ("aa")),
		)},
		{Name: "c", Valid: false, Detail: "malformed history"},
	}
	var buf bytes.Buffer
	failed := Summarize(results, &buf)
	if failed != 2 {
		t.Errorf("got %d failed, want 2", failed)
	}

	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if got, want := lines[len(lines)-1], "1 passed, 2 failed"; got != want {
		t.Errorf("last line: got %q, want %q", got, want)
	}
	for _, want := range []string{"PASS a: fine", "FAIL b: broken", "session=s1", "successor=aa", "FAIL c"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestSummarizeTruncates(t *testing.T) {
	var events []Event
	for i := 0; i < maxCounterexampleLines+3; i++ {
		events = append(events, ev(1, typeInvoke, opValidate, int64(i)))
	}
	var buf bytes.Buffer
	Summarize([]Result{{Name: "x", Counterexample: hist(events...)}}, &buf)
	if !strings.Contains(buf.String(), "... 3 earlier events") {
		t.Errorf("got %q, want a line about 3 earlier events", buf.String())
	}
}

func TestCheckAllValidHistory(t *testing.T) {
	h := hist(
		ev(1, typeInvoke, opLogin, 1, user("u1")),
		ev(1, typeOK, opLogin, 2, sess("s1"), user("u1"), gen(1)),
		ev(1, typeInvoke, opRefresh, 3, sess("s1"), gen(1), honest()),
		ev(2, typeInvoke, opRefresh, 4, sess("s1"), gen(1), honest()),
		ev(1, typeOK, opRefresh, 5, succ("aa")),
		ev(2, typeOK, opRefresh, 6, succ("aa")),
		ev(3, typeInvoke, opLogout, 7, sess("s1")),
		ev(3, typeOK, opLogout, 8),
		ev(1, typeInvoke, opRefresh, 9, sess("s1"), gen(2), honest()),
		ev(1, typeFail, opRefresh, 10, code(codeRevoked)),
		ev(9, typeInvoke, opReadSession, 11, sess("s1")),
		ev(9, typeOK, opReadSession, 12, sess("s1"), final(stateRevoked, 2)),
	)
	var buf bytes.Buffer
	if failed := Summarize(CheckAll(h), &buf); failed != 0 {
		t.Errorf("got %d failed, want 0:\n%s", failed, buf.String())
	}
}

func TestCheckMalformedHistory(t *testing.T) {
	h := hist(ev(1, typeOK, opLogin, 1))
	for _, r := range CheckAll(h) {
		if r.Valid {
			t.Errorf("%s: got valid, want invalid for a malformed history", r.Name)
		}
	}
}
