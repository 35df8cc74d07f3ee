package netns

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
)

// Host is one network namespace on the test network.
type Host struct {
	Name string // short name, such as "n1"
	NS   string // namespace name
	Addr string // IPv4 address on the bridge
	veth string // host side of its veth pair
}

// Network is a Linux bridge with one namespace per host attached to it. The
// machine itself has the bridge's first address, so programs outside the
// namespaces reach every host directly.
type Network struct {
	Bridge  string
	Gateway string // the machine's address on the bridge
	Subnet  string // CIDR of the bridge network
	Hosts   []Host

	mu     sync.Mutex
	drops  map[[2]string]bool // (from, to) host names whose packets are dropped
	loss   map[string]int     // host name -> percent of its packets dropped
	netems map[string]bool    // hosts with a netem qdisc
}

// Errors callers can test for.
var (
	ErrNotRoot = errors.New("network namespaces need root; run as root (CI runs as root) or under sudo")
	ErrNoNetem = errors.New("this kernel has no netem queueing discipline (sch_netem), so delay cannot be injected")
)

// Tools returns an error naming the first missing program the package needs.
func Tools() error {
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found in PATH: install iproute2 and nftables", tool)
		}
	}
	return nil
}

// Create builds a network named name (at most 8 characters, used as a prefix
// for the bridge, veth and namespace names) with one host per entry of
// hosts. It picks a 10.231.X.0/24 subnet that no interface on the machine
// uses. On error, whatever was created is removed again.
func Create(name string, hosts []string) (*Network, error) {
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	if err := Tools(); err != nil {
		return nil, err
	}
	if len(name) > 8 {
		return nil, fmt.Errorf("network name %q is longer than 8 characters", name)
	}
	prefix, err := freeSubnet()
	if err != nil {
		return nil, err
	}
	n := &Network{
		Bridge:  name + "br",
		Gateway: prefix + ".1",
		Subnet:  prefix + ".0/24",
		drops:   make(map[[2]string]bool),
		loss:    make(map[string]int),
		netems:  make(map[string]bool),
	}
	for i, h := range hosts {
		n.Hosts = append(n.Hosts, Host{
			Name: h,
			NS:   name + "-" + h,
			Addr: fmt.Sprintf("%s.%d", prefix, 11+i),
			veth: fmt.Sprintf("%sv%d", name, i+1),
		})
	}
	if err := n.build(); err != nil {
		n.Destroy()
		return nil, err
	}
	return n, nil
}

// freeSubnet returns the first 10.231.X prefix with no address on any
// interface of the machine.
func freeSubnet() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", fmt.Errorf("list interface addresses: %w", err)
	}
	used := make(map[string]bool)
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			ip := ipn.IP.To4()
			used[fmt.Sprintf("%d.%d.%d", ip[0], ip[1], ip[2])] = true
		}
	}
	for x := 1; x < 255; x++ {
		p := fmt.Sprintf("10.231.%d", x)
		if !used[p] {
			return p, nil
		}
	}
	return "", errors.New("no free 10.231.X.0/24 subnet")
}

func (n *Network) build() error {
	steps := [][]string{
		{"ip", "link", "add", n.Bridge, "type", "bridge"},
		{"ip", "addr", "add", n.Gateway + "/24", "dev", n.Bridge},
		{"ip", "link", "set", n.Bridge, "up"},
	}
	for _, h := range n.Hosts {
		steps = append(steps,
			[]string{"ip", "netns", "add", h.NS},
			[]string{"ip", "link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
			[]string{"ip", "link", "set", h.veth, "master", n.Bridge, "up"},
			[]string{"ip", "-n", h.NS, "addr", "add", h.Addr + "/24", "dev", "eth0"},
			[]string{"ip", "-n", h.NS, "link", "set", "eth0", "up"},
			[]string{"ip", "-n", h.NS, "link", "set", "lo", "up"},
			[]string{"ip", "-n", h.NS, "route", "add", "default", "via", n.Gateway},
		)
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			return err
		}
	}
	for _, h := range n.Hosts {
		if err := n.applyRules(h); err != nil {
			return err
		}
	}
	return nil
}

// Destroy removes the namespaces and the bridge. It is safe to call on a
// partly built network and more than once.
func (n *Network) Destroy() {
	for _, h := range n.Hosts {
		_ = run("ip", "netns", "del", h.NS)
		_ = run("ip", "link", "del", h.veth)
	}
	_ = run("ip", "link", "del", n.Bridge)
}

// Host returns the host with the given name.
func (n *Network) Host(name string) (Host, bool) {
	i := slices.IndexFunc(n.Hosts, func(h Host) bool { return h.Name == name })
	if i < 0 {
		return Host{}, false
	}
	return n.Hosts[i], true
}

// Command returns a command that runs inside the host's namespace.
func (n *Network) Command(host Host, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", host.NS, name}, args...)...)
}

// Drop makes every packet from host from to host to disappear, in that
// direction only. The machine's own traffic to and from both is untouched.
func (n *Network) Drop(from, to string) error {
	n.mu.Lock()
	n.drops[[2]string{from, to}] = true
	n.mu.Unlock()
	return n.reapply(from, to)
}

// Cut drops packets between a and b in both directions.
func (n *Network) Cut(a, b string) error {
	if err := n.Drop(a, b); err != nil {
		return err
	}
	return n.Drop(b, a)
}

// Loss drops percent of every packet the host sends, to anyone.
func (n *Network) Loss(host string, percent int) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("loss of %d%%: want 0 to 100", percent)
	}
	n.mu.Lock()
	n.loss[host] = percent
	n.mu.Unlock()
	return n.reapply(host)
}

// Delay adds latency (with jitter) to every packet the host sends, with
// netem. It returns ErrNoNetem when the kernel lacks netem.
func (n *Network) Delay(host string, delayMS, jitterMS int) error {
	h, ok := n.Host(host)
	if !ok {
		return fmt.Errorf("no host %q", host)
	}
	err := run("ip", "netns", "exec", h.NS, "tc", "qdisc", "replace", "dev", "eth0", "root", "netem",
		"delay", fmt.Sprintf("%dms", delayMS), fmt.Sprintf("%dms", jitterMS))
	if err != nil {
		if strings.Contains(err.Error(), "qdisc kind is unknown") {
			return ErrNoNetem
		}
		return err
	}
	n.mu.Lock()
	n.netems[host] = true
	n.mu.Unlock()
	return nil
}

// HasNetem reports whether the kernel can delay packets with netem, by
// adding a netem queueing discipline to the first host and removing it.
func (n *Network) HasNetem() bool {
	if len(n.Hosts) == 0 {
		return false
	}
	h := n.Hosts[0]
	if err := run("ip", "netns", "exec", h.NS, "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "1ms"); err != nil {
		return false
	}
	_ = run("ip", "netns", "exec", h.NS, "tc", "qdisc", "del", "dev", "eth0", "root")
	return true
}

// Heal removes every drop, loss and delay.
func (n *Network) Heal() error {
	n.mu.Lock()
	clear(n.drops)
	clear(n.loss)
	netems := n.netems
	n.netems = make(map[string]bool)
	n.mu.Unlock()

	var errs []error
	for _, h := range n.Hosts {
		if netems[h.Name] {
			errs = append(errs, run("ip", "netns", "exec", h.NS, "tc", "qdisc", "del", "dev", "eth0", "root"))
		}
		errs = append(errs, n.applyRules(h))
	}
	return errors.Join(errs...)
}

func (n *Network) reapply(names ...string) error {
	var errs []error
	for _, name := range names {
		h, ok := n.Host(name)
		if !ok {
			errs = append(errs, fmt.Errorf("no host %q", name))
			continue
		}
		errs = append(errs, n.applyRules(h))
	}
	return errors.Join(errs...)
}

// applyRules replaces the host's nftables table with one that holds its
// current drops and loss. Drops of packets from a peer are enforced on
// input and drops of packets to a peer on output, so a one-way fault needs
// no rule on the other side.
func (n *Network) applyRules(h Host) error {
	n.mu.Lock()
	var input, output []string
	for pair := range n.drops {
		from, to := pair[0], pair[1]
		if to == h.Name {
			if peer, ok := n.Host(from); ok {
				input = append(input, "ip saddr "+peer.Addr+" drop")
			}
		}
		if from == h.Name {
			if peer, ok := n.Host(to); ok {
				output = append(output, "ip daddr "+peer.Addr+" drop")
			}
		}
	}
	switch p := n.loss[h.Name]; {
	case p >= 100:
		output = append(output, "drop")
	case p > 0:
		output = append(output, fmt.Sprintf("numgen random mod 100 < %d drop", p))
	}
	n.mu.Unlock()
	slices.Sort(input)
	slices.Sort(output)

	var b strings.Builder
	b.WriteString("table inet jepsen\ndelete table inet jepsen\ntable inet jepsen {\n")
	writeChain(&b, "input", input)
	writeChain(&b, "output", output)
	b.WriteString("}\n")

	cmd := exec.Command("ip", "netns", "exec", h.NS, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %s: %w: %s", h.NS, err, bytes.TrimSpace(out))
	}
	return nil
}

func writeChain(b *strings.Builder, hook string, rules []string) {
	fmt.Fprintf(b, "  chain %s {\n    type filter hook %s priority 0; policy accept;\n", hook, hook)
	for _, r := range rules {
		fmt.Fprintf(b, "    %s\n", r)
	}
	b.WriteString("  }\n")
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
