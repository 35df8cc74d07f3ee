package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// testConfig is the command line of the test subcommand.
type testConfig struct {
	timeLimit       time.Duration
	nemeses         []string
	store           string
	injectBug       string
	faultDuration   time.Duration
	faultInterval   time.Duration
	honest          int
	users           int
	reuseGrace      time.Duration
	revocationBound time.Duration
	recovery        time.Duration
	recoveryTimeout time.Duration
	args            []string
}

func parseTestFlags(args []string, output io.Writer) (*testConfig, error) {
	cfg := &testConfig{args: args}
	fs := flag.NewFlagSet("jepsen test", flag.ContinueOnError)
	fs.SetOutput(output)
	var nemesisList string
	fs.DurationVar(&cfg.timeLimit, "time-limit", 60*time.Second, "how long the workload and the nemesis run, before healing and final reads")
	fs.StringVar(&nemesisList, "nemesis", "partition,kill,pause", "comma-separated faults to inject in turn: "+strings.Join(nemesisNames(), ", ")+", or none")
	fs.StringVar(&cfg.store, "store", "", "directory for the history, results, plots and logs (default jepsen/store/<time>-<faults joined by +>[-<bug>])")
	fs.StringVar(&cfg.injectBug, "inject-bug", "", "build the node with a deliberate bug, to show the checkers catch it: skip-cas or no-fsync")
	fs.DurationVar(&cfg.faultDuration, "fault-duration", 8*time.Second, "how long each fault lasts before it is healed")
	fs.DurationVar(&cfg.faultInterval, "fault-interval", 5*time.Second, "quiet time before each fault")
	fs.IntVar(&cfg.honest, "clients", 8, "honest clients, each refreshing its own session chain")
	fs.IntVar(&cfg.users, "users", 4, "accounts the clients share, so user-wide revocations end several sessions")
	fs.DurationVar(&cfg.reuseGrace, "reuse-grace", 20*time.Second, "the nodes' --reuse-grace; honest clients retry a token for half of it")
	fs.DurationVar(&cfg.revocationBound, "revocation-bound", time.Second, "how soon after a revocation is acknowledged every reachable node must reject its access tokens")
	fs.DurationVar(&cfg.recovery, "recovery", 5*time.Second, "time after a fault heals during which its nodes may still answer from stale state")
	fs.DurationVar(&cfg.recoveryTimeout, "recovery-timeout", 60*time.Second, "how long the healed cluster may take to become ready again")
	if err := fs.Parse(args); err != nil {
		return nil, &usageError{err: err, printed: true}
	}
	if fs.NArg() > 0 {
		return nil, &usageError{err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}

	var errs []error
	if nemesisList != "none" && nemesisList != "" {
		for _, n := range strings.Split(nemesisList, ",") {
			n = strings.TrimSpace(n)
			if _, ok := nemeses[n]; !ok {
				errs = append(errs, fmt.Errorf("--nemesis: unknown fault %q; want %s or none", n, strings.Join(nemesisNames(), ", ")))
				continue
			}
			cfg.nemeses = append(cfg.nemeses, n)
		}
	}
	if _, ok := injectedBugs[cfg.injectBug]; cfg.injectBug != "" && !ok {
		errs = append(errs, fmt.Errorf("--inject-bug: unknown bug %q; want skip-cas or no-fsync", cfg.injectBug))
	}
	if cfg.timeLimit < 5*time.Second {
		errs = append(errs, fmt.Errorf("--time-limit %s: want at least 5s", cfg.timeLimit))
	}
	if cfg.faultDuration <= 0 || cfg.faultInterval <= 0 {
		errs = append(errs, errors.New("--fault-duration and --fault-interval must be positive"))
	}
	if cfg.honest < 1 || cfg.users < 1 {
		errs = append(errs, errors.New("--clients and --users must be at least 1"))
	}
	if cfg.reuseGrace < 2*time.Second {
		errs = append(errs, fmt.Errorf("--reuse-grace %s: want at least 2s, or honest clients could not retry", cfg.reuseGrace))
	}
	if cfg.revocationBound <= 0 || cfg.recovery < 0 || cfg.recoveryTimeout <= 0 {
		errs = append(errs, errors.New("--revocation-bound and --recovery-timeout must be positive, --recovery not negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, &usageError{err: err}
	}
	return cfg, nil
}

// requireRoot refuses to run without root, which network namespaces need.
func requireRoot(euid int) error {
	if euid != 0 {
		return errors.New("the test command builds network namespaces and needs root; run it as root (CI does) or with sudo")
	}
	return nil
}

// defaultStore returns jepsen/store/<time>-<faults>[-<bug>] in the module.
func defaultStore(root string, cfg *testConfig) string {
	name := time.Now().UTC().Format("20060102T150405") + "-" + strings.Join(orNoneList(cfg.nemeses), "+")
	if cfg.injectBug != "" {
		name += "-" + cfg.injectBug
	}
	return filepath.Join(root, "jepsen", "store", name)
}

func orNoneList(s []string) []string {
	if len(s) == 0 {
		return []string{"none"}
	}
	return s
}

// runTest is the test subcommand: a three-node cluster in network
// namespaces behind HAProxy, clients and a nemesis for the time limit, then
// healing, final reads and the checkers. It returns an error when the run
// could not be carried out or any checker failed.
func runTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseTestFlags(args, stderr)
	if err != nil {
		return err
	}
	if err := requireRoot(os.Geteuid()); err != nil {
		return err
	}
	if cfg.store == "" {
		root, err := moduleRoot()
		if err != nil {
			return err
		}
		cfg.store = defaultStore(root, cfg)
	}
	if err := os.MkdirAll(cfg.store, 0o755); err != nil {
		return err
	}
	// One clock for the console, the history, the results and the plots.
	rec := newRecorder()
	logf := func(format string, a ...any) {
		fmt.Fprintf(stdout, "[%6.1fs] %s\n", time.Since(rec.start).Seconds(), fmt.Sprintf(format, a...))
	}
	logf("store: %s", cfg.store)

	tb, err := newTestbed(ctx, cfg, logf)
	if err != nil {
		return err
	}
	defer tb.close()
	logf("cluster ready behind HAProxy at %s", tb.lbURL)

	w := newWorkload(cfg, tb, rec)
	defer w.client.close()
	if err := w.setup(ctx, cfg.users); err != nil {
		return err
	}

	runErr := runPhases(ctx, cfg, tb, w, logf)
	history := rec.history()
	return report(cfg, history, runErr, stdout, logf)
}

// runPhases runs the workload and the nemesis for the time limit, heals,
// waits for recovery and makes the final reads.
func runPhases(ctx context.Context, cfg *testConfig, tb *testbed, w *workload, logf func(string, ...any)) error {
	logf("workload and nemesis (%s) for %s", strings.Join(orNoneList(cfg.nemeses), ","), cfg.timeLimit)
	runCtx, cancel := context.WithTimeout(ctx, cfg.timeLimit)
	defer cancel()

	var wg sync.WaitGroup
	spawn := func(fn func(context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(runCtx)
		}()
	}
	for i := range cfg.honest {
		spawn(func(ctx context.Context) { w.runHonest(ctx, i%len(w.users)) })
	}
	spawn(func(ctx context.Context) { w.runBurst(ctx, 0) })
	spawn(w.runThief)
	spawn(w.runRevoker)
	spawn(w.runProber)
	spawn(w.runProber)

	nemesisErr := runNemesis(runCtx, cfg, tb, w.rec, logf)
	<-runCtx.Done()
	wg.Wait()
	if err := tb.healAll(); err != nil {
		nemesisErr = errors.Join(nemesisErr, err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}

	logf("healed; waiting for every node to be ready")
	healed := time.Now()
	if err := waitAllReady(ctx, w.client, tb.nodeURLs(), cfg.recoveryTimeout); err != nil {
		return errors.Join(nemesisErr, fmt.Errorf("the cluster did not recover after healing: %w", err))
	}
	logf("ready %s after healing", time.Since(healed).Round(time.Millisecond))
	sleep(ctx, cfg.recovery-time.Since(healed))
	w.finalReads(ctx)
	return nemesisErr
}

// finalReads reads every session any login returned, as an admin through
// the load balancer, and validates the last access token of every ended
// session on every node.
func (w *workload) finalReads(ctx context.Context) {
	proc := w.newProcess()
	adm := &admin{w: w}
	tok, ok := adm.token(ctx)
	if !ok {
		return
	}
	w.mu.Lock()
	sessions := make([]string, 0, len(w.sessions))
	for s := range w.sessions {
		sessions = append(sessions, s)
	}
	ended := slices.Clone(w.endedAccess)
	w.mu.Unlock()
	slices.Sort(sessions)

	for _, s := range sessions {
		for attempt := 0; attempt < 5 && ctx.Err() == nil; attempt++ {
			typ, _, _ := w.call(Event{Process: proc, F: opReadSession, Node: "lb", Session: s},
				func(ctx context.Context) (apiResponse, error) {
					r, err := w.client.send(ctx, http.MethodGet, w.tb.lbURL+"/v1/admin/sessions/"+s, tok, nil)
					if err == nil && r.status == http.StatusNotFound {
						r.status, r.body = http.StatusOK, []byte(`{"state":"missing"}`)
					}
					return r, err
				},
				func(e *Event, r apiResponse) {
					e.State = jsonField(r.body, "state")
					var gen struct {
						Generation uint64 `json:"generation"`
					}
					if jsonDecode(r.body, &gen) == nil {
						e.FinalGeneration = gen.Generation
					}
				})
			if typ == typeOK {
				break
			}
			sleep(ctx, 500*time.Millisecond)
		}
	}
	for _, h := range ended {
		for _, n := range w.tb.nodes {
			w.validate(proc, h, n)
		}
	}
}

// report writes the history, results and plots, prints every checker's
// verdict and returns an error when any failed or the run itself did.
func report(cfg *testConfig, history []Event, runErr error, stdout io.Writer, logf func(string, ...any)) error {
	historyPath := filepath.Join(cfg.store, "history.jsonl")
	if err := writeHistoryFile(historyPath, history); err != nil {
		return err
	}
	logf("history: %d events in %s", len(history), historyPath)

	checkers := append(slices.Clone(Checkers), RevocationVisible(cfg.revocationBound, cfg.recovery))
	results := make([]Result, 0, len(checkers))
	for _, c := range checkers {
		results = append(results, c.Check(history))
	}
	if runErr != nil {
		results = append(results, Result{Name: "run-completed", Valid: false, Detail: runErr.Error()})
	} else {
		results = append(results, Result{Name: "run-completed", Valid: true, Detail: "faults healed, cluster ready, final reads made"})
	}

	if err := plotRun(history, filepath.Join(cfg.store, "latency.png"), filepath.Join(cfg.store, "throughput.png")); err != nil {
		logf("plots failed: %v", err)
	}
	if err := writeResults(cfg, history, results); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nAvailability (reported, not judged):\n")
	writeAvailability(stdout, availability(history))
	fmt.Fprintln(stdout)
	if failed := Summarize(results, stdout); failed > 0 {
		return &silentError{fmt.Errorf("%d checkers failed; see %s", failed, cfg.store)}
	}
	return nil
}

func writeHistoryFile(path string, history []Event) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := WriteHistory(f, history); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
