//go:build inject_skipcas

package actors

// skipCAS is a deliberate fault for the fault-injection harness in jepsen/.
// The FSM's compare-and-set alone is never the deciding check, because an
// actor decides on state that is current on the leader. So the faulty build
// also lets the actor rotate from an old generation, which leaves the FSM as
// the only guard, and that guard is off too. Never build a release with this tag.
const skipCAS = true
