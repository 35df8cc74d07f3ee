package main

import (
	"fmt"
	"math"
	"time"
)

// faultWindow is when a fault lasted and which nodes it may have cut off
// from the leader.
type faultWindow struct {
	start, end int64
	desc       string
	nodes      map[string]bool
}

// faultWindows returns the nemesis operations of a history. A fault that
// was never healed lasts to the end of time.
func faultWindows(ops []Op) []faultWindow {
	var out []faultWindow
	for _, op := range ops {
		if op.F() != opNemesis {
			continue
		}
		w := faultWindow{start: op.CallTime(), end: op.Completion.Time, desc: op.Invoke.Fault, nodes: make(map[string]bool)}
		if op.Type() != typeOK {
			w.end = math.MaxInt64
		}
		for _, n := range op.Invoke.Nodes {
			w.nodes[n] = true
		}
		out = append(out, w)
	}
	return out
}

// excused reports whether a fault on node overlapped [from, to], counting
// recovery after each fault as part of it.
func excused(windows []faultWindow, node string, from, to int64, recovery time.Duration) bool {
	for _, w := range windows {
		end := w.end
		if end != math.MaxInt64 {
			end += int64(recovery)
		}
		if w.nodes[node] && w.start <= to && end >= from {
			return true
		}
	}
	return false
}

// RevocationVisible returns the checker that every node rejects the access
// tokens of a revoked session within bound of the revocation's
// acknowledgement. A validation that returned ok counts against it when it
// was invoked more than bound after an acknowledged revocation of its
// session. A fault that may have cut the node off from the leader between
// the two, or within recovery before, excuses it: a node cut off from the
// leader validates with its last view, by design.
func RevocationVisible(bound, recovery time.Duration) Checker {
	const name = "revocation-visible"
	return Checker{Name: name, Check: func(history []Event) Result {
		ops, err := PairOps(history)
		if err != nil {
			return malformed(name, err)
		}
		idx := newSessionIndex(ops)
		windows := faultWindows(ops)

		var revocations []Op
		for _, op := range ops {
			if (isRevocation(op) && op.Type() == typeOK) || revokedByRefresh(op) {
				revocations = append(revocations, op)
			}
		}

		v := violations{name: name}
		excusedProbes := 0
		for _, op := range ops {
			if op.F() != opValidate || op.Type() != typeOK {
				continue
			}
			session, node, at := op.Session(), op.Invoke.Node, op.CallTime()
			for _, rev := range revocations {
				acked := rev.ReturnTime()
				if acked == math.MaxInt64 || acked+int64(bound) >= at {
					continue
				}
				covered := (rev.F() == opRefresh && rev.Session() == session) || idx.covers(rev, session, true)
				if !covered {
					continue
				}
				if excused(windows, node, acked, at, recovery) {
					excusedProbes++
					break
				}
				v.add(fmt.Sprintf("node %s accepted an access token of session %s at %d (event %d), %s after %s completed at %d (event %d); bound %s",
					node, session, at, op.Invoke.Index, time.Duration(at-acked).Round(time.Millisecond), rev.F(), acked,
					rev.Completion.Index, bound),
					rev.Completion, op.Invoke, op.Completion)
				break
			}
		}
		checked := 0
		for _, op := range ops {
			if op.F() == opValidate && op.Type() != typeInfo {
				checked++
			}
		}
		return v.result(fmt.Sprintf("%d answered validations, %d accepted tokens of revoked sessions on nodes a fault excused, bound %s",
			checked, excusedProbes, bound))
	}}
}
