package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/rotorhq/rotor/fsm"
)

// ErrMembershipClosed is returned by Membership methods called after
// Shutdown, and by WaitForMembers when Shutdown interrupts it.
var ErrMembershipClosed = errors.New("membership is shut down")

const (
	// DefaultPushPullInterval is how often each node starts a full state
	// exchange with one random peer. Every exchange carries the whole deny
	// set both ways at 24 bytes per entry (240 KB at 10,000 entries). In a
	// three-node cluster a node that missed a broadcast catches up within
	// about one interval. 5 s keeps that delay short and the sync traffic
	// modest, and Raft also delivers every revocation to its voters.
	DefaultPushPullInterval = 5 * time.Second

	// gossipInterval replaces memberlist's 200 ms default. A gossip round
	// sends packets only while broadcasts are queued, so an idle cluster pays
	// nothing for the shorter interval. While a revocation is queued, 50 ms
	// bounds how long a lost direct packet waits for its first retransmit.
	gossipInterval = 50 * time.Millisecond

	// gossipRetransmitMult sets how many packets carry each queued broadcast:
	// memberlist v0.6.0 counts one transmit per packet and stops after
	// RetransmitMult*ceil(log10(n+1)), which is 3 packets to random peers for
	// clusters of up to 9 nodes.
	gossipRetransmitMult = 3

	// secretKeySize selects AES-256-GCM in memberlist's keyring.
	secretKeySize = 32

	// metaUpdateTimeout bounds how long the metadata worker waits for
	// memberlist to send an UpdateMeta change to at least one peer.
	metaUpdateTimeout = 2 * time.Second

	// Join retries start at joinRetryMin and double up to joinRetryMax, so a
	// node that starts long before its peers tries every few seconds.
	joinRetryMin = 200 * time.Millisecond
	joinRetryMax = 10 * time.Second
)

// Member is one alive node of the gossip cluster, with the addresses it
// advertises.
type Member struct {
	NodeID       string
	HTTPAddr     string // host:port other nodes and the load balancer reach the API on
	RaftAddr     string // host:port of the Raft transport
	GossipAddr   string // host:port of memberlist
	Bootstrapped bool   // the node's Raft has state (is or was part of a formed cluster)
}

// MembershipConfig configures the gossip layer of a node.
type MembershipConfig struct {
	// NodeID is the memberlist node name. It must be unique in the cluster
	// and is normally the Raft server id.
	NodeID string

	// GossipAddr is the host:port memberlist binds (UDP and TCP) and
	// advertises. The host must be an IP address. With an unspecified host
	// (0.0.0.0 or ::) memberlist binds every interface and advertises the
	// address of a private interface it picks. Port 0 picks a free port.
	GossipAddr string

	// HTTPAddr and RaftAddr are advertised in the node's metadata. Either may
	// be empty for a node without that listener.
	HTTPAddr string
	RaftAddr string

	// Join lists gossip addresses of other nodes. Joining retries in the
	// background until one of them responds. The node's own address may be
	// in the list.
	Join []string

	// SecretKey is memberlist's AES-256-GCM key, 32 bytes, derived by the
	// caller from the cluster secret. Every packet and stream is encrypted
	// with it, so a node with another key cannot join.
	SecretKey []byte

	// Revocations receives the deny entries other nodes send, and is the set
	// a push/pull exchange sends to them.
	Revocations *fsm.Revocations

	// Bootstrapped reports whether the local Raft has state. It is read
	// whenever the node's metadata is built (at start and on UpdateMeta). Nil
	// means false.
	Bootstrapped func() bool

	// PushPullInterval is the period of full state exchanges. Zero means
	// DefaultPushPullInterval.
	PushPullInterval time.Duration

	// Now returns the current time, used to drop deny entries that have
	// already expired. Nil means time.Now.
	Now func() time.Time

	Logger *slog.Logger
}

// Validate checks the configuration and fills the defaults.
func (c *MembershipConfig) Validate() error {
	switch {
	case c.NodeID == "":
		return errors.New("node id is empty")
	case c.GossipAddr == "":
		return errors.New("gossip address is empty")
	case len(c.SecretKey) != secretKeySize:
		return fmt.Errorf("gossip secret key is %d bytes, want %d", len(c.SecretKey), secretKeySize)
	case c.Revocations == nil:
		return errors.New("revocation set is nil")
	case c.PushPullInterval < 0:
		return fmt.Errorf("push/pull interval %s is negative", c.PushPullInterval)
	}
	if _, _, err := splitGossipAddr(c.GossipAddr); err != nil {
		return err
	}
	for _, addr := range []string{c.HTTPAddr, c.RaftAddr} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("invalid advertised address %q: %w", addr, err)
		}
	}
	// The metadata must fit memberlist's limit, or memberlist panics when it
	// builds an alive message. Bootstrapped only adds bytes when true.
	meta, err := json.Marshal(nodeMeta{NodeID: c.NodeID, HTTPAddr: c.HTTPAddr, RaftAddr: c.RaftAddr, Bootstrapped: true})
	if err != nil {
		return fmt.Errorf("encode node metadata: %w", err)
	}
	if len(meta) > memberlist.MetaMaxSize {
		return fmt.Errorf("node metadata is %d bytes, max %d: shorten the node id or addresses", len(meta), memberlist.MetaMaxSize)
	}

	if c.Bootstrapped == nil {
		c.Bootstrapped = func() bool { return false }
	}
	if c.PushPullInterval == 0 {
		c.PushPullInterval = DefaultPushPullInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// splitGossipAddr parses a host:port whose host is an IP address, because
// memberlist binds and advertises IP addresses only.
func splitGossipAddr(addr string) (netip.Addr, int, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("invalid gossip address %q: %w", addr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("invalid gossip address %q: host must be an IP address", addr)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("invalid gossip address %q: bad port", addr)
	}
	return ip, int(port), nil
}

// nodeMeta is the node metadata memberlist carries in alive messages.
type nodeMeta struct {
	NodeID       string `json:"id"`
	HTTPAddr     string `json:"http,omitempty"`
	RaftAddr     string `json:"raft,omitempty"`
	Bootstrapped bool   `json:"boot,omitempty"`
}

// memberEntry is a member with a copy of the memberlist node that direct
// sends address.
type memberEntry struct {
	member Member
	node   memberlist.Node
}

// Membership is the node's view of the gossip cluster, and the channel that
// spreads revocations to every node faster than Raft's commit notifications.
//
// Concurrency: methods are safe for concurrent use. OnChange callbacks run
// one at a time on the membership's notification goroutine.
type Membership struct {
	cfg    MembershipConfig
	logger *slog.Logger
	ml     *memberlist.Memberlist
	queue  *memberlist.TransmitLimitedQueue

	mu       sync.Mutex
	members  map[string]memberEntry // guarded by mu; alive and suspect nodes, keyed by node id
	changed  chan struct{}          // guarded by mu; closed and replaced on every change
	onChange []func()               // guarded by mu

	// memberCount and peerIPs mirror members for lock-free readers:
	// memberlist's queue and request handlers.
	memberCount atomic.Int64
	peerIPs     atomic.Pointer[map[netip.Addr]struct{}]

	changeSignal chan struct{} // capacity 1: wakes the OnChange goroutine
	metaSignal   chan struct{} // capacity 1: wakes the metadata worker
	sends        chan []byte   // messages for the direct-send goroutine

	// warnings limits the warnings that remote input can trigger.
	warnings logLimiter

	lifecycle sync.Mutex // serializes Leave and Shutdown
	leaveMu   sync.Mutex // held while setting left and while advertising metadata
	left      atomic.Bool
	closed    atomic.Bool
	done      chan struct{}
	wg        sync.WaitGroup
}

// StartMembership creates the memberlist instance on cfg.GossipAddr and
// starts joining cfg.Join. It tries the join addresses once before it
// returns. If none responds it keeps retrying in the background, so nodes
// may start in any order. WaitForMembers reports when peers have joined.
func StartMembership(cfg MembershipConfig) (*Membership, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid membership config: %w", err)
	}
	m := &Membership{
		cfg:          cfg,
		logger:       cfg.Logger,
		members:      make(map[string]memberEntry),
		changed:      make(chan struct{}),
		changeSignal: make(chan struct{}, 1),
		metaSignal:   make(chan struct{}, 1),
		sends:        make(chan []byte, directSendQueueSize),
		warnings:     logLimiter{limit: 10, window: time.Second},
		done:         make(chan struct{}),
	}
	empty := map[netip.Addr]struct{}{}
	m.peerIPs.Store(&empty)
	m.queue = &memberlist.TransmitLimitedQueue{
		NumNodes:       func() int { return int(m.memberCount.Load()) },
		RetransmitMult: gossipRetransmitMult,
	}

	mlc, err := m.memberlistConfig()
	if err != nil {
		return nil, err
	}
	// Create calls the event delegate for the local node, so m must be
	// complete except for ml.
	ml, err := memberlist.Create(mlc)
	if err != nil {
		return nil, fmt.Errorf("start memberlist on %s: %w", cfg.GossipAddr, err)
	}
	m.ml = ml

	m.wg.Add(3)
	go m.runChangeNotifier()
	go m.runMetaUpdater()
	go m.runDirectSender()

	self, _ := m.Member(cfg.NodeID)
	m.logger.Info("membership started", "node_id", cfg.NodeID, "gossip_addr", self.GossipAddr)

	peers := m.joinAddrs(self.GossipAddr)
	if wait := jitter(joinRetryMin); len(peers) > 0 && !m.tryJoin(peers, 1, wait) {
		m.wg.Add(1)
		go m.retryJoin(peers, wait)
	}
	return m, nil
}

func (m *Membership) memberlistConfig() (*memberlist.Config, error) {
	ip, port, err := splitGossipAddr(m.cfg.GossipAddr)
	if err != nil {
		return nil, err
	}
	c := memberlist.DefaultLANConfig()
	c.Name = m.cfg.NodeID
	c.BindAddr = ip.String()
	c.BindPort = port
	// With port 0 memberlist binds a free port and sets both ports to it.
	c.AdvertisePort = port
	if !ip.IsUnspecified() {
		c.AdvertiseAddr = ip.String()
	}
	// Encrypt everything and drop unencrypted input. Both flags are
	// memberlist's defaults, set here because the security of the cluster
	// depends on them.
	c.SecretKey = bytes.Clone(m.cfg.SecretKey)
	c.GossipVerifyIncoming = true
	c.GossipVerifyOutgoing = true
	c.Delegate = gossipDelegate{m}
	c.Events = eventDelegate{m}
	c.GossipInterval = gossipInterval
	c.PushPullInterval = m.cfg.PushPullInterval
	c.Logger = newMemberlistLogger(m.logger)
	return c, nil
}

// joinAddrs returns cfg.Join without the node's own address. A push/pull
// with itself would be wasted, and tryJoin counts members rather than
// responding addresses, so it would not count as a join either.
func (m *Membership) joinAddrs(self string) []string {
	var out []string
	for _, addr := range m.cfg.Join {
		if addr == "" || addr == self || addr == m.cfg.GossipAddr {
			continue
		}
		out = append(out, addr)
	}
	return out
}

// tryJoin contacts addrs and reports whether the member list now contains
// another node, which also covers a peer that joined this node in the
// meantime. A failure is logged with retryIn, the delay before the next
// attempt.
func (m *Membership) tryJoin(addrs []string, attempt int, retryIn time.Duration) bool {
	contacted, err := m.ml.Join(addrs)
	if members := m.ml.NumMembers(); members > 1 {
		m.logger.Info("joined gossip cluster", "node_id", m.cfg.NodeID, "contacted", contacted, "members", members, "attempt", attempt)
		return true
	}
	reason := "no other member answered"
	if err != nil {
		reason = flattenError(err)
	}
	m.logger.Warn("join gossip cluster failed, retrying in the background", "node_id", m.cfg.NodeID,
		"join", addrs, "attempt", attempt, "retry_in", retryIn, "error", reason)
	return false
}

// flattenError renders the multierror that memberlist's Join returns on
// one line.
func flattenError(err error) string {
	var multi interface{ WrappedErrors() []error }
	if !errors.As(err, &multi) {
		return err.Error()
	}
	texts := make([]string, 0, len(multi.WrappedErrors()))
	for _, e := range multi.WrappedErrors() {
		texts = append(texts, e.Error())
	}
	return strings.Join(texts, "; ")
}

// retryJoin retries tryJoin, first after wait, then with exponential
// backoff, until it succeeds or the node leaves or shuts down.
func (m *Membership) retryJoin(addrs []string, wait time.Duration) {
	defer m.wg.Done()
	delay := joinRetryMin
	for attempt := 2; ; attempt++ {
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-m.done:
			timer.Stop()
			return
		}
		if m.left.Load() || m.ml.NumMembers() > 1 {
			return
		}
		delay = min(2*delay, joinRetryMax)
		wait = jitter(delay)
		if m.tryJoin(addrs, attempt, wait) {
			return
		}
	}
}

// jitter returns a random duration in [d/2, d], so that nodes which started
// together do not retry in step.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// Members returns the alive members, including this node, sorted by NodeID.
// Suspect members count as alive until memberlist declares them dead.
func (m *Membership) Members() []Member {
	m.mu.Lock()
	out := make([]Member, 0, len(m.members))
	for _, e := range m.members {
		out = append(out, e.member)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.NodeID, b.NodeID) })
	return out
}

// Member returns the alive member named nodeID.
func (m *Membership) Member(nodeID string) (Member, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.members[nodeID]
	return e.member, ok
}

// WaitForMembers blocks until at least n members are alive and returns them.
// It returns ctx's error (wrapped) when ctx ends first, and
// ErrMembershipClosed on Shutdown.
func (m *Membership) WaitForMembers(ctx context.Context, n int) ([]Member, error) {
	for {
		m.mu.Lock()
		have := len(m.members)
		changed := m.changed
		m.mu.Unlock()
		if have >= n {
			return m.Members(), nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for %d gossip members, have %d: %w", n, have, ctx.Err())
		case <-m.done:
			return nil, ErrMembershipClosed
		}
	}
}

// IsPeerIP reports whether ip is the host of any alive member's HTTP, Raft or
// gossip address. Hosts given as names never match: resolving them here
// would put DNS on the request path. Unspecified addresses never match.
func (m *Membership) IsPeerIP(ip string) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	_, ok := (*m.peerIPs.Load())[addr.Unmap().WithZone("")]
	return ok
}

// OnChange registers fn to run after a member joins, leaves, fails or changes
// its metadata. fn runs on the membership's notification goroutine, one call
// at a time. Changes that arrive while fn runs lead to one more call, not one
// per change, so fn should read Members instead of counting calls. A slow fn
// delays later calls, not memberlist.
func (m *Membership) OnChange(fn func()) {
	m.mu.Lock()
	m.onChange = append(m.onChange, fn)
	m.mu.Unlock()
}

func (m *Membership) runChangeNotifier() {
	defer m.wg.Done()
	for {
		select {
		case <-m.changeSignal:
			m.mu.Lock()
			fns := slices.Clone(m.onChange)
			m.mu.Unlock()
			for _, fn := range fns {
				fn()
			}
		case <-m.done:
			return
		}
	}
}

// UpdateMeta re-reads Bootstrapped and advertises the new metadata. The local
// view changes before UpdateMeta returns. Peers learn it from a memberlist
// UpdateNode on a background goroutine, usually within a gossip round or
// two, so UpdateMeta does not wait for the network.
func (m *Membership) UpdateMeta() {
	if m.closed.Load() || m.left.Load() {
		return
	}
	bootstrapped := m.cfg.Bootstrapped()
	m.mu.Lock()
	if e, ok := m.members[m.cfg.NodeID]; ok {
		e.member.Bootstrapped = bootstrapped
		m.members[m.cfg.NodeID] = e
		m.membersChangedLocked()
	}
	m.mu.Unlock()
	m.signalChange()

	select {
	case m.metaSignal <- struct{}{}:
	default:
		// An update is already pending; it reads Bootstrapped when it runs.
	}
}

func (m *Membership) runMetaUpdater() {
	defer m.wg.Done()
	for {
		select {
		case <-m.metaSignal:
			m.advertiseMeta()
		case <-m.done:
			return
		}
	}
}

func (m *Membership) advertiseMeta() {
	// UpdateNode marks the local node alive again, which would undo a
	// Leave, so Leave waits for an update in progress.
	m.leaveMu.Lock()
	defer m.leaveMu.Unlock()
	if m.left.Load() {
		return
	}
	if err := m.ml.UpdateNode(metaUpdateTimeout); err != nil {
		m.logger.Warn("advertise node metadata failed", "node_id", m.cfg.NodeID, "error", err)
	}
}

// Leave announces that this node leaves the cluster and waits up to timeout
// for the announcement to go out. It stops background join retries and
// metadata updates. memberlist keeps responding to probes until Shutdown.
func (m *Membership) Leave(timeout time.Duration) error {
	m.lifecycle.Lock()
	defer m.lifecycle.Unlock()
	if m.closed.Load() {
		return ErrMembershipClosed
	}
	m.leaveMu.Lock()
	m.left.Store(true)
	m.leaveMu.Unlock()
	if err := m.ml.Leave(timeout); err != nil {
		return fmt.Errorf("leave gossip cluster: %w", err)
	}
	m.logger.Info("left gossip cluster", "node_id", m.cfg.NodeID)
	return nil
}

// Shutdown stops the background goroutines and memberlist without announcing
// a leave, so other nodes detect a failure by probing. Call Leave first for a
// graceful exit. Shutdown waits for a join attempt in progress (bounded by
// memberlist's 10 s TCP timeout) and for a metadata update in progress
// (bounded by metaUpdateTimeout). Further calls return nil.
func (m *Membership) Shutdown() error {
	m.lifecycle.Lock()
	defer m.lifecycle.Unlock()
	if m.closed.Swap(true) {
		return nil
	}
	close(m.done)
	m.wg.Wait()
	if err := m.ml.Shutdown(); err != nil {
		return fmt.Errorf("shut down memberlist: %w", err)
	}
	m.logger.Info("membership stopped", "node_id", m.cfg.NodeID)
	return nil
}

// eventDelegate receives memberlist's join, leave and update events.
// memberlist calls it with its node lock held, one event at a time. It
// therefore only copies the node and signals, and never calls memberlist.
type eventDelegate struct{ m *Membership }

func (d eventDelegate) NotifyJoin(n *memberlist.Node) {
	d.m.upsertMember(n)
	d.m.logger.Info("gossip member joined", "node_id", d.m.cfg.NodeID, "peer_id", n.Name, "gossip_addr", n.Address())
}

func (d eventDelegate) NotifyUpdate(n *memberlist.Node) {
	d.m.upsertMember(n)
	d.m.logger.Debug("gossip member updated", "node_id", d.m.cfg.NodeID, "peer_id", n.Name)
}

// NotifyLeave cannot tell a leave from a failure: memberlist v0.6.0 keeps
// the state in a field that Node does not expose.
func (d eventDelegate) NotifyLeave(n *memberlist.Node) {
	m := d.m
	m.mu.Lock()
	delete(m.members, n.Name)
	m.membersChangedLocked()
	m.mu.Unlock()
	m.signalChange()
	m.logger.Info("gossip member left or failed", "node_id", m.cfg.NodeID, "peer_id", n.Name, "gossip_addr", n.Address())
}

func (m *Membership) upsertMember(n *memberlist.Node) {
	node := *n
	node.Addr = slices.Clone(n.Addr)
	node.Meta = slices.Clone(n.Meta)
	member := Member{NodeID: n.Name, GossipAddr: n.Address()}
	var meta nodeMeta
	if err := json.Unmarshal(n.Meta, &meta); err != nil {
		m.warn("invalid gossip member metadata", "peer_id", n.Name, "error", err)
	} else {
		member.HTTPAddr = meta.HTTPAddr
		member.RaftAddr = meta.RaftAddr
		member.Bootstrapped = meta.Bootstrapped
	}

	m.mu.Lock()
	m.members[n.Name] = memberEntry{member: member, node: node}
	m.membersChangedLocked()
	m.mu.Unlock()
	m.signalChange()
}

// membersChangedLocked refreshes the lock-free mirrors and wakes
// WaitForMembers. The caller holds mu.
func (m *Membership) membersChangedLocked() {
	ips := make(map[netip.Addr]struct{})
	for _, e := range m.members {
		for _, addr := range []string{e.member.HTTPAddr, e.member.RaftAddr, e.member.GossipAddr} {
			if ip, ok := hostIP(addr); ok {
				ips[ip] = struct{}{}
			}
		}
	}
	m.peerIPs.Store(&ips)
	m.memberCount.Store(int64(len(m.members)))
	close(m.changed)
	m.changed = make(chan struct{})
}

// hostIP returns the host of a host:port address when it is a specified IP.
func hostIP(addr string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.IsUnspecified() {
		return netip.Addr{}, false
	}
	return ip.Unmap().WithZone(""), true
}

func (m *Membership) signalChange() {
	select {
	case m.changeSignal <- struct{}{}:
	default:
		// A call is already pending and will see this change too.
	}
}

// localMeta encodes this node's metadata for memberlist.
func (m *Membership) localMeta() ([]byte, error) {
	return json.Marshal(nodeMeta{
		NodeID:       m.cfg.NodeID,
		HTTPAddr:     m.cfg.HTTPAddr,
		RaftAddr:     m.cfg.RaftAddr,
		Bootstrapped: m.cfg.Bootstrapped(),
	})
}

func (m *Membership) now() time.Time { return m.cfg.Now() }
