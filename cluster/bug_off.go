//go:build !inject_nofsync

package cluster

import "github.com/hashicorp/raft"

// injectNoFsync is true only in a build with a deliberate fault; see
// bug_nofsync.go.
const injectNoFsync = false

func wrapLogStore(s raft.LogStore) raft.LogStore { return s }
