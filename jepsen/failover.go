package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// failoverConfig is the command line of the failover subcommand.
type failoverConfig struct {
	target    string
	nodes     []string
	trials    int
	dir       string
	script    string
	settle    time.Duration
	bound     time.Duration
	retryWait time.Duration
}

// runFailover measures how long clients go without a successful refresh
// when the leader is killed. In each trial, a client refreshes one session's
// chain through the target as fast as it can and retries the same token on
// 503 and on transport errors. The leader gets SIGKILL, and the time from the
// kill to the next 200 of a request sent after it is one sample. The killed node is started
// again and the cluster settles before the next trial. The nodes must run
// under deploy/local-cluster.sh, whose pid files name their processes.
func runFailover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFailoverFlags(args, stderr)
	if err != nil {
		return err
	}
	client := newAPIClient(8, 5*time.Second)
	defer client.close()

	user := credentials{Username: fmt.Sprintf("failover-%d", time.Now().UnixNano()), Password: "failover password"}
	if r, err := client.signup(ctx, cfg.target, user); err != nil || r.status != http.StatusCreated {
		return fmt.Errorf("sign up through %s failed: %v %s", cfg.target, err, describeResponse(r))
	}

	fmt.Fprintf(stdout, "command:    jepsen failover %s\n", strings.Join(args, " "))
	var samples []time.Duration
	for trial := 1; trial <= cfg.trials; trial++ {
		sample, err := failoverTrial(ctx, cfg, client, user)
		if err != nil {
			return fmt.Errorf("trial %d: %w", trial, err)
		}
		samples = append(samples, sample)
		fmt.Fprintf(stdout, "trial %2d: first success %s after the kill\n", trial, sample.Round(time.Millisecond))
	}

	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	fmt.Fprintf(stdout, "leader kill to first success over %d trials: p50 %s  p90 %s  p99 %s  max %s\n",
		len(samples), percentile(samples, 0.50), percentile(samples, 0.90), percentile(samples, 0.99), samples[len(samples)-1])
	return nil
}

func parseFailoverFlags(args []string, stderr io.Writer) (*failoverConfig, error) {
	cfg := &failoverConfig{}
	fs := flag.NewFlagSet("jepsen failover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.target, "target", "http://127.0.0.1:8000", "URL the client sends its refreshes to (the load balancer)")
	nodes := fs.String("nodes", "http://127.0.0.1:8101,http://127.0.0.1:8102,http://127.0.0.1:8103", "comma-separated node URLs, to find the leader")
	fs.IntVar(&cfg.trials, "trials", 20, "number of leader kills")
	fs.StringVar(&cfg.dir, "dir", "./rotor-cluster", "the --dir of deploy/local-cluster.sh, with its pid files")
	fs.StringVar(&cfg.script, "script", "deploy/local-cluster.sh", "path of the local cluster script, to restart the killed node")
	fs.DurationVar(&cfg.settle, "settle", 3*time.Second, "pause after the killed node is ready again, before the next trial")
	fs.DurationVar(&cfg.bound, "bound", 30*time.Second, "give up a trial when no refresh succeeds for this long after the kill")
	fs.DurationVar(&cfg.retryWait, "retry-delay", 10*time.Millisecond, "pause before the client retries a refresh that got 503 or no response")
	if err := fs.Parse(args); err != nil {
		return nil, &usageError{err: err, printed: true}
	}
	cfg.nodes = strings.Split(*nodes, ",")
	if cfg.trials < 1 {
		return nil, &usageError{err: errors.New("--trials must be at least 1")}
	}
	return cfg, nil
}

// failoverTrial runs one kill and returns the time to the first success.
func failoverTrial(ctx context.Context, cfg *failoverConfig, client *apiClient, user credentials) (time.Duration, error) {
	r, err := client.login(ctx, cfg.target, user)
	if err != nil || r.status != http.StatusOK {
		return 0, fmt.Errorf("login failed: %v %s", err, describeResponse(r))
	}
	tokens, err := parseTokens(r.body)
	if err != nil {
		return 0, err
	}

	leaderID, err := findLeader(ctx, client, cfg.nodes)
	if err != nil {
		return 0, err
	}
	pid, err := readPid(filepath.Join(cfg.dir, leaderID+".pid"))
	if err != nil {
		return 0, err
	}

	// The client: refresh continuously; report each success time.
	// Each success carries the time its request was sent: only a request
	// sent after the kill shows that the cluster serves again.
	successes := make(chan time.Time, 1024)
	clientCtx, stopClient := context.WithCancel(ctx)
	defer stopClient()
	failures := make(chan error, 1)
	go func() {
		current := tokens.RefreshToken
		for clientCtx.Err() == nil {
			sent := time.Now()
			r, err := client.refresh(clientCtx, cfg.target, current)
			switch {
			case err != nil || r.status == http.StatusServiceUnavailable:
				// Same token again: the grace window makes this safe.
				time.Sleep(cfg.retryWait)
			case r.status == http.StatusOK:
				next, err := parseTokens(r.body)
				if err != nil {
					failures <- err
					return
				}
				current = next.RefreshToken
				select {
				case successes <- sent:
				default:
				}
			default:
				failures <- fmt.Errorf("refresh returned %s, want 200 or 503", describeResponse(r))
				return
			}
		}
	}()

	// Let the client run, then kill the leader and wait for a success.
	time.Sleep(300 * time.Millisecond)
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return 0, fmt.Errorf("kill leader %s (pid %d): %w", leaderID, pid, err)
	}
	var sample time.Duration
	deadline := time.After(cfg.bound)
wait:
	for {
		select {
		case sent := <-successes:
			if sent.After(killed) {
				sample = time.Since(killed)
				break wait
			}
		case err := <-failures:
			return 0, err
		case <-deadline:
			return 0, fmt.Errorf("no successful refresh within %s of killing %s", cfg.bound, leaderID)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	stopClient()

	// Bring the node back and let the cluster settle.
	out, err := exec.CommandContext(ctx, cfg.script, "start-node", leaderID, "--dir", cfg.dir).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("restart %s: %v\n%s", leaderID, err, out)
	}
	if err := waitAllReady(ctx, client, cfg.nodes, 30*time.Second); err != nil {
		return 0, err
	}
	time.Sleep(cfg.settle)
	return sample, nil
}

func findLeader(ctx context.Context, client *apiClient, nodes []string) (string, error) {
	for range 100 {
		for _, node := range nodes {
			r, err := client.send(ctx, http.MethodGet, node+"/v1/cluster", "", nil)
			if err != nil || r.status != http.StatusOK {
				continue
			}
			if id := jsonField(r.body, "leader_id"); id != "" {
				return id, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", errors.New("no node reports a leader")
}

func waitAllReady(ctx context.Context, client *apiClient, nodes []string, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for _, node := range nodes {
		for {
			r, err := client.send(ctx, http.MethodGet, node+"/readyz", "", nil)
			if err == nil && r.status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not ready after %s", node, bound)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

func readPid(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("pid file %s: %w", path, err)
	}
	return pid, nil
}

// percentile returns the nearest-rank percentile of sorted samples.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted)) + 0.5)
	i = min(max(i-1, 0), len(sorted)-1)
	return sorted[i].Round(time.Millisecond)
}

// jsonField returns a top-level string field of a JSON object, or "".
func jsonField(body []byte, name string) string {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	s, _ := m[name].(string)
	return s
}
