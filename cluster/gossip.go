package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/rotorhq/rotor/fsm"
)

// Gossip message format. Every message starts with a type byte, followed by
// entries of 24 bytes each: the 16-byte session id, then Until as big-endian
// Unix seconds, rounded up so a receiver never denies for less time than
// the sender.
const (
	// gossipRevocations is a broadcast of new deny entries. It must fit one
	// UDP packet.
	gossipRevocations byte = 1

	// gossipState is the whole deny set, sent in push/pull exchanges over
	// TCP. It has no size limit of its own.
	gossipState byte = 2

	gossipEntrySize = 16 + 8

	// gossipMaxEntries keeps a broadcast at 1 + 49*24 = 1,177 bytes.
	// memberlist's UDP packets are 1,400 bytes, and encryption (29 bytes),
	// the checksum (5) and framing (a few) must fit beside it.
	gossipMaxEntries = 49

	// gossipMaxStateEntries caps the deny set a push/pull exchange sends at
	// 9.6 MB. memberlist v0.6.0 rejects a remote state above 20 MiB, and that
	// failure would stop membership sync too.
	gossipMaxStateEntries = 400_000

	// gossipMaxQueued caps the retransmit queue at about 1.2 MB. The direct
	// send has already delivered most of a burst, and push/pull repairs the
	// rest, so the oldest queued messages are dropped beyond this.
	gossipMaxQueued = 1024

	// directSendQueueSize buffers broadcasts for the direct-send goroutine.
	// When it is full a message is only gossiped.
	directSendQueueSize = 256
)

// errMalformedGossip is returned by decodeGossip for input that is not a
// well-formed message of the expected type.
var errMalformedGossip = errors.New("malformed gossip message")

// encodeGossip encodes entries as one message of type kind.
func encodeGossip(kind byte, entries []fsm.Revocation) []byte {
	buf := make([]byte, 1, 1+len(entries)*gossipEntrySize)
	buf[0] = kind
	for _, e := range entries {
		buf = append(buf, e.Session[:]...)
		buf = binary.BigEndian.AppendUint64(buf, uint64(untilSeconds(e.Until)))
	}
	return buf
}

// encodeBroadcasts splits entries into gossipRevocations messages of at most
// gossipMaxEntries entries each.
func encodeBroadcasts(entries []fsm.Revocation) [][]byte {
	var msgs [][]byte
	for len(entries) > 0 {
		n := min(len(entries), gossipMaxEntries)
		msgs = append(msgs, encodeGossip(gossipRevocations, entries[:n]))
		entries = entries[n:]
	}
	return msgs
}

// untilSeconds rounds t up to whole Unix seconds.
func untilSeconds(t time.Time) int64 {
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	return sec
}

// decodeGossip decodes a message of type kind. It copies everything it
// returns, because memberlist reuses the buffer after the delegate returns.
func decodeGossip(kind byte, buf []byte) ([]fsm.Revocation, error) {
	if len(buf) == 0 {
		return nil, fmt.Errorf("%w: empty", errMalformedGossip)
	}
	if buf[0] != kind {
		return nil, fmt.Errorf("%w: type %d, want %d", errMalformedGossip, buf[0], kind)
	}
	body := buf[1:]
	if len(body)%gossipEntrySize != 0 {
		return nil, fmt.Errorf("%w: %d bytes of entries is not a multiple of %d", errMalformedGossip, len(body), gossipEntrySize)
	}
	entries := make([]fsm.Revocation, 0, len(body)/gossipEntrySize)
	for ; len(body) > 0; body = body[gossipEntrySize:] {
		var e fsm.Revocation
		copy(e.Session[:], body[:16])
		e.Until = time.Unix(int64(binary.BigEndian.Uint64(body[16:gossipEntrySize])), 0)
		entries = append(entries, e)
	}
	return entries, nil
}

// liveEntries returns the entries whose Until is after now.
func liveEntries(entries []fsm.Revocation, now time.Time) []fsm.Revocation {
	live := make([]fsm.Revocation, 0, len(entries))
	for _, e := range entries {
		if e.Until.After(now) {
			live = append(live, e)
		}
	}
	return live
}

// BroadcastRevocations sends new deny entries to every other node. It does
// not wait for the network, because raft's apply goroutine calls it.
// Entries go out on two paths:
//   - a direct UDP packet (memberlist SendBestEffort) to every alive peer,
//     sent at once from the direct-send goroutine, for low latency;
//   - memberlist's gossip rounds, which retransmit each message a few times
//     to random peers in case a direct packet was lost.
//
// Entries that have already expired are not sent. A node that misses both
// paths catches up at the next push/pull exchange.
func (m *Membership) BroadcastRevocations(entries []fsm.Revocation) {
	if m.closed.Load() {
		return
	}
	live := liveEntries(entries, m.now())
	if len(live) == 0 {
		return
	}
	for _, msg := range encodeBroadcasts(live) {
		m.queue.QueueBroadcast(revocationBroadcast(msg))
		select {
		case m.sends <- msg:
		default:
			m.warn("direct gossip send queue full; the revocation is only gossiped", "entries", (len(msg)-1)/gossipEntrySize)
		}
	}
	m.queue.Prune(gossipMaxQueued)
}

// QueueLen returns the number of broadcast messages waiting for gossip
// retransmission. Each message carries up to 49 deny entries.
func (m *Membership) QueueLen() int { return m.queue.NumQueued() }

func (m *Membership) runDirectSender() {
	defer m.wg.Done()
	for {
		select {
		case msg := <-m.sends:
			m.sendDirect(msg)
		case <-m.done:
			return
		}
	}
}

// sendDirect sends msg in one UDP packet to every alive member except this
// node.
func (m *Membership) sendDirect(msg []byte) {
	m.mu.Lock()
	peers := make([]memberlist.Node, 0, len(m.members))
	for id, e := range m.members {
		if id != m.cfg.NodeID {
			peers = append(peers, e.node)
		}
	}
	m.mu.Unlock()

	for i := range peers {
		if err := m.ml.SendBestEffort(&peers[i], msg); err != nil {
			m.warn("direct gossip send failed", "peer_id", peers[i].Name, "error", err)
		}
	}
}

// addEntries adds the entries that have not expired to the deny set.
func (m *Membership) addEntries(entries []fsm.Revocation) {
	now := m.now()
	for _, e := range entries {
		if e.Until.After(now) {
			m.cfg.Revocations.Add(e.Session, e.Until)
		}
	}
}

// warn logs a warning that remote input or load can repeat, at most
// m.warnings.limit times per window. The next warning logged carries the
// count of the ones dropped.
func (m *Membership) warn(msg string, args ...any) {
	ok, suppressed := m.warnings.allow(time.Now())
	if !ok {
		return
	}
	args = append([]any{"node_id", m.cfg.NodeID}, args...)
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	m.logger.Warn(msg, args...)
}

// revocationBroadcast is one encoded gossipRevocations message in
// memberlist's retransmit queue. Every message is distinct, so none
// invalidates another.
type revocationBroadcast []byte

func (b revocationBroadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b revocationBroadcast) Message() []byte                       { return b }
func (b revocationBroadcast) Finished()                             {}
func (b revocationBroadcast) UniqueBroadcast()                      {}

var _ memberlist.UniqueBroadcast = revocationBroadcast(nil)

// gossipDelegate connects memberlist to the membership: node metadata,
// received messages, queued broadcasts and push/pull state. memberlist calls
// it from several goroutines at once.
type gossipDelegate struct{ m *Membership }

var _ memberlist.Delegate = gossipDelegate{}

// NodeMeta returns the local metadata. Validate has checked that it fits
// memberlist's 512-byte limit, which memberlist enforces with a panic.
func (d gossipDelegate) NodeMeta(limit int) []byte {
	meta, err := d.m.localMeta()
	if err != nil || len(meta) > limit {
		d.m.logger.Error("node metadata does not fit; advertising none", "node_id", d.m.cfg.NodeID, "bytes", len(meta), "limit", limit, "error", err)
		return nil
	}
	return meta
}

// NotifyMsg handles a gossipRevocations message from a direct send or a
// gossip round. It runs on memberlist's packet handler goroutine, and adding
// to the deny set does not block.
func (d gossipDelegate) NotifyMsg(buf []byte) {
	entries, err := decodeGossip(gossipRevocations, buf)
	if err != nil {
		d.m.warn("dropped gossip message", "bytes", len(buf), "error", err)
		return
	}
	d.m.addEntries(entries)
}

func (d gossipDelegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.m.queue.GetBroadcasts(overhead, limit)
}

// LocalState returns the deny set for a push/pull exchange, or for a join,
// without the entries that have already expired.
func (d gossipDelegate) LocalState(join bool) []byte {
	m := d.m
	live := liveEntries(m.cfg.Revocations.List(), m.now())
	if len(live) > gossipMaxStateEntries {
		// NOTE: the entries past the cap, in session id order, reach peers
		// only through broadcasts and Raft until the set shrinks.
		m.warn("deny set too large for one push/pull exchange; sending part of it", "entries", len(live), "sent", gossipMaxStateEntries)
		live = live[:gossipMaxStateEntries]
	}
	return encodeGossip(gossipState, live)
}

// MergeRemoteState adds a peer's deny set. An empty buffer comes from a peer
// whose delegate returned no state.
func (d gossipDelegate) MergeRemoteState(buf []byte, join bool) {
	if len(buf) == 0 {
		return
	}
	entries, err := decodeGossip(gossipState, buf)
	if err != nil {
		d.m.warn("dropped gossip push/pull state", "bytes", len(buf), "join", join, "error", err)
		return
	}
	d.m.addEntries(entries)
}
