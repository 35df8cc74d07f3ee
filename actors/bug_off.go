//go:build !inject_skipcas

package actors

// skipCAS is true only in a build with a deliberate fault; see bug_skipcas.go.
const skipCAS = false
