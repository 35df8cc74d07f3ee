package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Workload names accepted by --workload and, except revoke, by --mix.
const (
	workloadRefresh  = "refresh"
	workloadValidate = "validate"
	workloadLogin    = "login"
	workloadRevoke   = "revoke"
	workloadMixed    = "mixed"
)

// loadConfig is the parsed command line of `jepsen load`.
type loadConfig struct {
	args []string // the command line as given, for the report

	target   string
	nodes    []string
	workload string
	levels   []int // concurrency levels, run in order
	duration time.Duration
	warmup   time.Duration
	rate     float64 // operations per second over all workers; 0 is a closed loop

	users    int
	sessions int
	password string
	mix      []mixEntry

	maxRequests int64
	timeout     time.Duration
	retryDelay  time.Duration
	maxRetries  int

	samples       int
	revokeTimeout time.Duration
	pollInterval  time.Duration

	json bool
}

// mixEntry is one operation of the mixed workload and its share of operations.
type mixEntry struct {
	op     string
	weight int
}

func (c *loadConfig) maxConcurrency() int {
	return slices.Max(c.levels)
}

// usesSessions reports whether the workload measures operations on sessions
// that are prepared before the measured phase.
func (c *loadConfig) usesSessions() bool {
	switch c.workload {
	case workloadRefresh, workloadValidate, workloadMixed:
		return true
	}
	return false
}

const loadUsage = `Usage: jepsen load [flags]

Sends a bounded load to a Rotor node or load balancer and reports throughput
and latency for each concurrency level.

Workloads:
  refresh   each worker rotates its own session with POST /v1/refresh; a 503
            is retried with the same token after --retry-delay
  validate  GET /v1/me with prepared access tokens
  login     POST /v1/login (argon2id password check and a new session)
  revoke    time from a POST /v1/logout response until GET /v1/me with the
            session's access token returns 401 on every node in --nodes
  mixed     refresh, validate and login in the shares given by --mix

Users and sessions are created before the measured phase, so the cost of
argon2id stays out of the refresh and validate figures. An operation is one
logical request: a refresh retried after 503 counts once, and its latency
includes the retries. Status and error code counts include every response.

Flags:
`

// parseLoadFlags parses the arguments of `jepsen load`.
func parseLoadFlags(args []string, output io.Writer) (*loadConfig, error) {
	cfg := &loadConfig{args: args}
	fs := flag.NewFlagSet("jepsen load", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), loadUsage)
		fs.PrintDefaults()
	}

	var nodes, levels, mix string
	fs.StringVar(&cfg.target, "target", "http://127.0.0.1:8080", "base URL of the load balancer or node that receives the load")
	fs.StringVar(&nodes, "nodes", "", "comma-separated base URLs of every node, for node-targeted work (revoke polls each one); default: --target")
	fs.StringVar(&cfg.workload, "workload", workloadRefresh, "refresh, validate, login, revoke or mixed")
	fs.StringVar(&levels, "concurrency", "", "comma-separated worker counts, run one after the other, such as 1,8,32,64 (default 8, and 1 for revoke)")
	fs.DurationVar(&cfg.duration, "duration", 30*time.Second, "measured time per concurrency level")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "unmeasured load before each concurrency level")
	fs.Float64Var(&cfg.rate, "rate", 0, "open-loop target rate in operations per second over all workers, with latency counted from each operation's scheduled start; 0 runs a closed loop as fast as the workers can")
	fs.IntVar(&cfg.users, "users", 16, "number of users to sign up with random names")
	fs.IntVar(&cfg.sessions, "sessions", 0, "number of sessions to log in before measuring (default: the largest concurrency level); refresh and mixed need one per worker")
	fs.StringVar(&cfg.password, "password", "jepsen-load-password", "password of the created users, 8 to 256 characters")
	fs.StringVar(&mix, "mix", "validate=85,refresh=10,login=5", "shares of the mixed workload as op=weight pairs; ops are refresh, validate and login")
	fs.Int64Var(&cfg.maxRequests, "max-requests", 2_000_000, "maximum number of operations per concurrency level, warm-up included; a level stops early when it is reached")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "timeout of one HTTP request")
	fs.DurationVar(&cfg.retryDelay, "retry-delay", 50*time.Millisecond, "wait before retrying a refresh that got 503 (Retry-After is ignored because it is in whole seconds)")
	fs.IntVar(&cfg.maxRetries, "max-retries", 100, "retries of one refresh after 503 before it counts as an error; keep retries × delay below the node's --reuse-grace")
	fs.IntVar(&cfg.samples, "samples", 100, "revoke: number of sessions to log out per concurrency level")
	fs.DurationVar(&cfg.revokeTimeout, "revoke-timeout", 5*time.Second, "revoke: how long to wait for a token to turn valid before logout, and invalid after it, on each node")
	fs.DurationVar(&cfg.pollInterval, "poll-interval", time.Millisecond, "revoke: interval between two GET /v1/me polls of one node")
	fs.BoolVar(&cfg.json, "json", false, "print the report as JSON instead of tables")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &usageError{err: err, printed: true}
	}
	if fs.NArg() > 0 {
		return nil, &usageError{err: fmt.Errorf("unexpected argument %q; every setting is a flag", fs.Arg(0))}
	}
	if levels == "" {
		levels = "8"
		if cfg.workload == workloadRevoke {
			levels = "1"
		}
	}

	var errs []error
	var err error
	if cfg.target, err = parseBaseURL(cfg.target); err != nil {
		errs = append(errs, fmt.Errorf("--target: %w", err))
	}
	if cfg.nodes, err = parseNodes(nodes, cfg.target); err != nil {
		errs = append(errs, fmt.Errorf("--nodes: %w", err))
	}
	if cfg.levels, err = parseLevels(levels); err != nil {
		errs = append(errs, fmt.Errorf("--concurrency: %w", err))
	}
	if cfg.mix, err = parseMix(mix); err != nil {
		errs = append(errs, fmt.Errorf("--mix: %w", err))
	}
	errs = append(errs, cfg.validate()...)
	if err := errors.Join(errs...); err != nil {
		return nil, &usageError{err: err}
	}
	if cfg.sessions == 0 {
		cfg.sessions = cfg.maxConcurrency()
	}
	return cfg, nil
}

// validate checks the settings that do not need parsing.
func (c *loadConfig) validate() []error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	known := []string{workloadRefresh, workloadValidate, workloadLogin, workloadRevoke, workloadMixed}
	check(slices.Contains(known, c.workload), "--workload %q must be one of %s", c.workload, strings.Join(known, ", "))
	check(c.duration > 0, "--duration %s must be positive", c.duration)
	check(c.warmup >= 0, "--warmup %s must not be negative", c.warmup)
	check(c.rate >= 0, "--rate %g must not be negative", c.rate)
	check(c.users >= 1, "--users %d must be at least 1", c.users)
	check(c.sessions >= 0, "--sessions %d must not be negative", c.sessions)
	pw := len([]rune(c.password))
	check(pw >= 8 && pw <= 256, "--password must be 8 to 256 characters, got %d", pw)
	check(c.maxRequests >= 1, "--max-requests %d must be at least 1", c.maxRequests)
	check(c.timeout > 0, "--timeout %s must be positive", c.timeout)
	check(c.retryDelay >= 0, "--retry-delay %s must not be negative", c.retryDelay)
	check(c.maxRetries >= 0, "--max-retries %d must not be negative", c.maxRetries)
	check(c.samples >= 1, "--samples %d must be at least 1", c.samples)
	check(c.revokeTimeout > 0, "--revoke-timeout %s must be positive", c.revokeTimeout)
	check(c.pollInterval > 0, "--poll-interval %s must be positive", c.pollInterval)

	// Workers of refresh and mixed each own a session, because two workers
	// rotating one session would see grace replays and reuse, not load.
	needOwn := c.workload == workloadRefresh || c.workload == workloadMixed
	if needOwn && c.sessions > 0 && len(c.levels) > 0 && c.sessions < c.maxConcurrency() {
		errs = append(errs, fmt.Errorf("--sessions %d is below the largest --concurrency %d; %s needs a session per worker",
			c.sessions, c.maxConcurrency(), c.workload))
	}
	return errs
}

// parseBaseURL checks that raw is an http or https URL without a path and
// returns it without a trailing slash.
func parseBaseURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q must be an http:// or https:// URL with a host", raw)
	}
	if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		return "", fmt.Errorf("%q must be a base URL without path or query", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}

func parseNodes(raw, target string) ([]string, error) {
	if strings.TrimSpace(raw) == "" {
		return []string{target}, nil
	}
	var nodes []string
	for part := range strings.SplitSeq(raw, ",") {
		node, err := parseBaseURL(part)
		if err != nil {
			return nil, err
		}
		if slices.Contains(nodes, node) {
			return nil, fmt.Errorf("%s is listed twice", node)
		}
		nodes = append(nodes, node)
	}
	return nodes, nil
}

// maxWorkers bounds one concurrency level, so a typo cannot open tens of
// thousands of connections.
const maxWorkers = 4096

func parseLevels(raw string) ([]int, error) {
	var levels []int
	for part := range strings.SplitSeq(raw, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 || n > maxWorkers {
			return nil, fmt.Errorf("%q must be a worker count from 1 to %d", part, maxWorkers)
		}
		levels = append(levels, n)
	}
	return levels, nil
}

func parseMix(raw string) ([]mixEntry, error) {
	var mix []mixEntry
	total := 0
	for part := range strings.SplitSeq(raw, ",") {
		op, weightText, ok := strings.Cut(strings.TrimSpace(part), "=")
		weight, err := strconv.Atoi(weightText)
		if !ok || err != nil || weight < 0 {
			return nil, fmt.Errorf("%q must be op=weight with a whole weight of 0 or more", part)
		}
		if op != workloadRefresh && op != workloadValidate && op != workloadLogin {
			return nil, fmt.Errorf("unknown operation %q; use refresh, validate or login", op)
		}
		if slices.ContainsFunc(mix, func(e mixEntry) bool { return e.op == op }) {
			return nil, fmt.Errorf("operation %q is listed twice", op)
		}
		mix = append(mix, mixEntry{op: op, weight: weight})
		total += weight
	}
	if total == 0 {
		return nil, errors.New("weights add up to 0")
	}
	return mix, nil
}

// runLoad runs `jepsen load`: it prepares users and sessions, runs every
// concurrency level and writes the report to stdout. Progress goes to stderr.
func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) (*loadReport, error) {
	cfg, err := parseLoadFlags(args, stderr)
	if err != nil {
		return nil, err
	}
	// Each worker needs one idle connection per host. Revoke workers poll
	// every node at once, which is one connection per worker on each node.
	client := newAPIClient(cfg.maxConcurrency()+8, cfg.timeout)
	defer client.close()

	report := newLoadReport(cfg)
	progress := func(format string, args ...any) {
		fmt.Fprintf(stderr, "jepsen load: "+format+"\n", args...)
	}

	pool, err := prepare(ctx, cfg, client, progress)
	if err != nil {
		return nil, err
	}

	for _, workers := range cfg.levels {
		if ctx.Err() != nil {
			break
		}
		if cfg.workload == workloadRevoke {
			progress("revoke: %d samples with %d workers", cfg.samples, workers)
			report.Revoke = append(report.Revoke, runRevokeLevel(ctx, cfg, client, pool, workers))
			continue
		}
		if cfg.workload == workloadValidate || cfg.workload == workloadMixed {
			// Fresh access tokens for this level, so a run of many levels
			// does not outlive --access-ttl (5 minutes by default).
			// NOTE: one level longer than --access-ttl still ends in 401s.
			if err := pool.renewAccessTokens(ctx, cfg, client); err != nil {
				return nil, err
			}
		}
		progress("%s: %d workers, %s warm-up, %s measured", cfg.workload, workers, cfg.warmup, cfg.duration)
		report.Levels = append(report.Levels, runLevel(ctx, cfg, client, pool, workers))
	}
	report.Interrupted = ctx.Err() != nil

	if cfg.json {
		err = report.writeJSON(stdout)
	} else {
		err = report.writeText(stdout)
	}
	return report, err
}
