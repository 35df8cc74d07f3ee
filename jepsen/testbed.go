package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rotorhq/rotor/jepsen/netns"
)

// Ports every node uses inside its own namespace.
const (
	nodeHTTPPort   = 8080
	nodeRaftPort   = 8081
	nodeGossipPort = 8082
)

// adminUsername is the admin account the harness creates on every node.
const adminUsername = "jepsen-admin"

// injectedBugs maps --inject-bug names to the build tags that enable them.
var injectedBugs = map[string]string{
	"skip-cas": "inject_skipcas",
	"no-fsync": "inject_nofsync",
}

// testbed is a three-node cluster, each node in its own network namespace,
// with HAProxy in front on the machine's loopback.
type testbed struct {
	dir     string // the run's store directory
	root    string // the module root
	binary  string
	net     *netns.Network
	nodes   []*clusterNode
	lbURL   string
	haproxy *exec.Cmd
	secret  string
	admin   string // the admin's password
	cfg     *testConfig
	netem   bool // whether the kernel can delay packets
}

// clusterNode is one node process, which the nemeses kill, pause and restart.
type clusterNode struct {
	name    string
	host    netns.Host
	dir     string
	logPath string
	url     string // HTTP base URL, reachable from the machine

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	paused bool
}

// moduleRoot returns the directory of the go.mod that holds this command.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run the harness from inside the Rotor module (go run ./jepsen test)")
	}
	return filepath.Dir(mod), nil
}

// buildNode builds the node binary into the store with the test clock and,
// when asked, a deliberate bug.
func buildNode(root, dir, bug string) (string, error) {
	tags := "jepsen"
	if bug != "" {
		tags += "," + injectedBugs[bug]
	}
	binary := filepath.Join(dir, "rotor")
	cmd := exec.Command("go", "build", "-tags", tags, "-o", binary, "./cmd/node")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build -tags %s ./cmd/node: %w\n%s", tags, err, out)
	}
	return binary, nil
}

// newTestbed builds the binary, the network and the nodes, and starts the
// nodes and HAProxy. It returns once every node is ready.
func newTestbed(ctx context.Context, cfg *testConfig, log func(string, ...any)) (*testbed, error) {
	tb := &testbed{dir: cfg.store, cfg: cfg, secret: randomHex(32), admin: randomHex(16)}
	var err error
	if tb.root, err = moduleRoot(); err != nil {
		return nil, err
	}
	log("building the node binary (bug: %s)", orNone(cfg.injectBug))
	if tb.binary, err = buildNode(tb.root, tb.dir, cfg.injectBug); err != nil {
		return nil, err
	}

	names := []string{"n1", "n2", "n3"}
	netName := fmt.Sprintf("rj%x", os.Getpid()&0xffff)
	if tb.net, err = netns.Create(netName, names); err != nil {
		return nil, err
	}
	tb.netem = tb.net.HasNetem()
	log("network %s on bridge %s: %s", tb.net.Subnet, tb.net.Bridge, hostList(tb.net.Hosts))
	for _, h := range tb.net.Hosts {
		dir := filepath.Join(tb.dir, h.Name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			tb.close()
			return nil, err
		}
		tb.nodes = append(tb.nodes, &clusterNode{
			name:    h.Name,
			host:    h,
			dir:     dir,
			logPath: filepath.Join(dir, "node.log"),
			url:     fmt.Sprintf("http://%s:%d", h.Addr, nodeHTTPPort),
		})
	}

	if err := tb.startHAProxy(); err != nil {
		tb.close()
		return nil, err
	}
	for _, n := range tb.nodes {
		if err := tb.start(n); err != nil {
			tb.close()
			return nil, err
		}
	}
	client := newAPIClient(4, 2*time.Second)
	defer client.close()
	if err := waitAllReady(ctx, client, tb.nodeURLs(), 60*time.Second); err != nil {
		tb.close()
		return nil, fmt.Errorf("cluster did not start: %w (logs in %s)", err, tb.dir)
	}
	return tb, nil
}

func hostList(hosts []netns.Host) string {
	parts := make([]string, len(hosts))
	for i, h := range hosts {
		parts[i] = h.Name + "=" + h.Addr
	}
	return strings.Join(parts, " ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func (tb *testbed) nodeURLs() []string {
	urls := make([]string, len(tb.nodes))
	for i, n := range tb.nodes {
		urls[i] = n.url
	}
	return urls
}

func (tb *testbed) node(name string) *clusterNode {
	for _, n := range tb.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// clockFile is the file the node's test clock reads its offset from.
func (n *clusterNode) clockFile() string { return filepath.Join(n.dir, "clock-offset") }

// start runs the node in its namespace, appending to its log.
func (tb *testbed) start(n *clusterNode) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return nil
	}
	logFile, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()

	var join []string
	for _, peer := range tb.nodes {
		if peer != n {
			join = append(join, fmt.Sprintf("%s:%d", peer.host.Addr, nodeGossipPort))
		}
	}
	args := []string{
		"--node-id", n.name,
		"--http-addr", fmt.Sprintf("%s:%d", n.host.Addr, nodeHTTPPort),
		"--raft-addr", fmt.Sprintf("%s:%d", n.host.Addr, nodeRaftPort),
		"--gossip-addr", fmt.Sprintf("%s:%d", n.host.Addr, nodeGossipPort),
		"--data-dir", filepath.Join(n.dir, "data"),
		"--bootstrap-expect", "3",
		"--join", strings.Join(join, ","),
		"--issuer", tb.lbURL,
		"--trusted-proxies", tb.net.Gateway + "/32",
		"--admin-username", adminUsername,
		"--reuse-grace", tb.cfg.reuseGrace.String(),
		"--log-format", "json",
	}
	cmd := tb.net.Command(n.host, tb.binary, args...)
	cmd.Env = append(os.Environ(),
		"ROTOR_CLUSTER_SECRET="+tb.secret,
		"ROTOR_ADMIN_PASSWORD="+tb.admin,
		"ROTOR_TEST_CLOCK_OFFSET_FILE="+n.clockFile(),
	)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Its own process group, so a Ctrl-C of the harness reaches the harness
	// alone, and the harness stops the nodes in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	fmt.Fprintf(logFile, "--- %s harness starts %s\n", time.Now().UTC().Format(time.RFC3339Nano), n.name)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", n.name, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	n.cmd, n.exited, n.paused = cmd, exited, false
	return nil
}

// signal sends sig to the node's process; it reports false when the node is
// not running.
func (n *clusterNode) signal(sig syscall.Signal) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		return false
	}
	switch sig {
	case syscall.SIGSTOP:
		n.paused = true
	case syscall.SIGCONT:
		n.paused = false
	}
	return true
}

// kill sends SIGKILL and waits for the process to be gone.
func (n *clusterNode) kill() bool {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return false
	}
	cmd.Process.Kill()
	<-exited
	n.mu.Lock()
	n.cmd, n.paused = nil, false
	n.mu.Unlock()
	return true
}

// stop sends SIGTERM and kills the node if it has not exited 10 s later.
func (n *clusterNode) stop() {
	n.mu.Lock()
	cmd, exited, paused := n.cmd, n.exited, n.paused
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	if paused {
		cmd.Process.Signal(syscall.SIGCONT)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
	n.mu.Lock()
	n.cmd = nil
	n.mu.Unlock()
}

func (n *clusterNode) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// setClockOffset shifts the node's test clock; zero restores it.
func (n *clusterNode) setClockOffset(d time.Duration) error {
	return os.WriteFile(n.clockFile(), []byte(d.String()+"\n"), 0o600)
}

// startHAProxy runs HAProxy with deploy/haproxy.cfg on free loopback ports,
// pointed at the nodes' bridge addresses.
func (tb *testbed) startHAProxy() error {
	if _, err := exec.LookPath("haproxy"); err != nil {
		return errors.New("haproxy not found in PATH: install it (apt-get install -y haproxy)")
	}
	lb, err := freePort()
	if err != nil {
		return err
	}
	stats, err := freePort()
	if err != nil {
		return err
	}
	tb.lbURL = "http://" + lb
	logFile, err := os.OpenFile(filepath.Join(tb.dir, "haproxy.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command("haproxy", "-db", "-f", filepath.Join(tb.root, "deploy", "haproxy.cfg"))
	cmd.Env = append(os.Environ(), "ROTOR_LB_BIND="+lb, "ROTOR_LB_STATS_BIND="+stats)
	for i, n := range tb.nodes {
		cmd.Env = append(cmd.Env, fmt.Sprintf("ROTOR_NODE_%d=%s:%d", i+1, n.host.Addr, nodeHTTPPort))
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start haproxy: %w", err)
	}
	tb.haproxy = cmd
	return nil
}

// freePort returns a loopback address with a port that was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// leader returns the name of the node that the reachable nodes name as
// leader, or "" when none does.
func (tb *testbed) leader(ctx context.Context, client *apiClient) string {
	for _, n := range tb.nodes {
		r, err := client.send(ctx, http.MethodGet, n.url+"/v1/cluster", "", nil)
		if err != nil || r.status != http.StatusOK {
			continue
		}
		if id := jsonField(r.body, "leader_id"); id != "" && tb.node(id) != nil {
			return id
		}
	}
	return ""
}

// healAll ends every fault: it restores the network and the clocks,
// resumes paused nodes and starts killed ones.
func (tb *testbed) healAll() error {
	errs := []error{tb.net.Heal()}
	for _, n := range tb.nodes {
		errs = append(errs, n.setClockOffset(0))
		n.signal(syscall.SIGCONT)
		if !n.running() {
			errs = append(errs, tb.start(n))
		}
	}
	return errors.Join(errs...)
}

// close stops the nodes and HAProxy and removes the network.
func (tb *testbed) close() {
	var wg sync.WaitGroup
	for _, n := range tb.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.stop()
		}()
	}
	wg.Wait()
	if tb.haproxy != nil {
		tb.haproxy.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { tb.haproxy.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			tb.haproxy.Process.Kill()
			<-done
		}
	}
	if tb.net != nil {
		tb.net.Destroy()
	}
}
