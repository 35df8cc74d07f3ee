//go:build inject_skipcas

package fsm

// skipCAS is a deliberate fault for the fault-injection harness in jepsen/,
// which builds the node with -tags inject_skipcas to show that its checkers
// catch a forked token family: RotateSession then rotates a session whatever
// its state and generation. Never build a release with this tag.
const skipCAS = true
