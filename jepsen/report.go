package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// loadReport is the result of one `jepsen load` run. Its JSON form is the
// output of --json.
type loadReport struct {
	Command    string    `json:"command"`
	StartedAt  time.Time `json:"started_at"`
	GoVersion  string    `json:"go_version"`
	GOMAXPROCS int       `json:"gomaxprocs"`
	NumCPU     int       `json:"num_cpu"`
	Hostname   string    `json:"hostname"`

	Target          string   `json:"target"`
	Nodes           []string `json:"nodes"`
	Workload        string   `json:"workload"`
	Mix             string   `json:"mix,omitempty"`
	DurationSeconds float64  `json:"duration_seconds"`
	WarmupSeconds   float64  `json:"warmup_seconds"`
	Rate            float64  `json:"rate"`
	Users           int      `json:"users"`
	Sessions        int      `json:"sessions"`

	// Revoke workload only.
	Samples              int     `json:"samples,omitempty"`
	PollIntervalMillis   float64 `json:"poll_interval_ms,omitempty"`
	RevokeTimeoutSeconds float64 `json:"revoke_timeout_seconds,omitempty"`

	Levels      []levelReport       `json:"levels,omitempty"`
	Revoke      []revokeLevelReport `json:"revoke,omitempty"`
	Interrupted bool                `json:"interrupted"`
}

// latencyReport holds latency quantiles in microseconds.
type latencyReport struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// opReport is the result of one kind of operation in one level.
type opReport struct {
	Requests    int64            `json:"requests"`
	Errors      int64            `json:"errors"`
	Retried     int64            `json:"retried"`
	Throughput  float64          `json:"throughput"` // operations per second of measured time
	Latency     latencyReport    `json:"latency_us"`
	StatusCodes map[string]int64 `json:"status_codes"`
	ErrorCodes  map[string]int64 `json:"error_codes"`
}

// levelReport is the result of one concurrency level of a load workload.
// Its embedded opReport covers every operation of the level.
type levelReport struct {
	Concurrency     int     `json:"concurrency"`
	MeasuredSeconds float64 `json:"measured_seconds"`
	StoppedBy       string  `json:"stopped_by"` // duration, max-requests or interrupted
	Relogins        int64   `json:"relogins"`   // sessions replaced after the node ended them
	opReport
	Operations map[string]*opReport `json:"operations,omitempty"` // mixed workload only
}

// revokeLevelReport is the result of one concurrency level of the revoke
// workload. Times count from the logout response, except Logout.
type revokeLevelReport struct {
	Concurrency       int                      `json:"concurrency"`
	Seconds           float64                  `json:"seconds"`
	Samples           int64                    `json:"samples"`
	Errors            int64                    `json:"errors"`
	ErrorCodes        map[string]int64         `json:"error_codes"`
	Polls             int64                    `json:"polls"`
	VisibleEverywhere latencyReport            `json:"visible_everywhere_us"`
	PerNode           map[string]latencyReport `json:"per_node_us"`
	NodeTimeouts      map[string]int64         `json:"node_timeouts"`
	Logout            latencyReport            `json:"logout_us"`
}

func newLoadReport(cfg *loadConfig) *loadReport {
	host, _ := os.Hostname()
	r := &loadReport{
		Command:         "jepsen load " + shellJoin(cfg.args),
		StartedAt:       time.Now().UTC().Truncate(time.Second),
		GoVersion:       runtime.Version(),
		GOMAXPROCS:      runtime.GOMAXPROCS(0),
		NumCPU:          runtime.NumCPU(),
		Hostname:        host,
		Target:          cfg.target,
		Nodes:           cfg.nodes,
		Workload:        cfg.workload,
		DurationSeconds: cfg.duration.Seconds(),
		WarmupSeconds:   cfg.warmup.Seconds(),
		Rate:            cfg.rate,
		Users:           cfg.users,
	}
	if cfg.usesSessions() {
		r.Sessions = cfg.sessions
	}
	if cfg.workload == workloadRevoke {
		r.Samples = cfg.samples
		r.PollIntervalMillis = float64(cfg.pollInterval) / float64(time.Millisecond)
		r.RevokeTimeoutSeconds = cfg.revokeTimeout.Seconds()
	}
	if cfg.workload == workloadMixed {
		var parts []string
		for _, e := range cfg.mix {
			parts = append(parts, fmt.Sprintf("%s=%d", e.op, e.weight))
		}
		r.Mix = strings.Join(parts, ",")
	}
	return r
}

func newLevelReport(cfg *loadConfig, workers int, measured time.Duration, stoppedBy string, relogins int64, byOp map[string]*opStats) levelReport {
	total := newOpStats()
	for _, s := range byOp {
		total.merge(s)
	}
	level := levelReport{
		Concurrency:     workers,
		MeasuredSeconds: round(measured.Seconds(), 3),
		StoppedBy:       stoppedBy,
		Relogins:        relogins,
		opReport:        *newOpReport(total, measured),
	}
	if cfg.workload == workloadMixed {
		level.Operations = map[string]*opReport{}
		for op, s := range byOp {
			level.Operations[op] = newOpReport(s, measured)
		}
	}
	return level
}

func newOpReport(s *opStats, measured time.Duration) *opReport {
	r := &opReport{
		Requests:    s.requests,
		Errors:      s.errors,
		Retried:     s.retried,
		Latency:     summarize(&s.latency),
		StatusCodes: map[string]int64{},
		ErrorCodes:  s.codes,
	}
	if measured > 0 {
		r.Throughput = round(float64(s.requests)/measured.Seconds(), 1)
	}
	for status, n := range s.status {
		r.StatusCodes[strconv.Itoa(status)] = n
	}
	return r
}

func newRevokeLevelReport(cfg *loadConfig, workers int, elapsed time.Duration, polls int64, s *revokeStats) revokeLevelReport {
	r := revokeLevelReport{
		Concurrency:       workers,
		Seconds:           round(elapsed.Seconds(), 3),
		Samples:           s.samples,
		Errors:            s.errors,
		ErrorCodes:        s.codes,
		Polls:             polls,
		VisibleEverywhere: summarize(&s.everywhere),
		PerNode:           map[string]latencyReport{},
		NodeTimeouts:      map[string]int64{},
		Logout:            summarize(&s.logout),
	}
	for i, node := range cfg.nodes {
		r.PerNode[node] = summarize(&s.perNode[i])
		r.NodeTimeouts[node] = s.timeouts[i]
	}
	return r
}

func summarize(h *histogram) latencyReport {
	us := func(d time.Duration) float64 { return round(float64(d)/float64(time.Microsecond), 1) }
	return latencyReport{
		Mean: us(h.mean()),
		P50:  us(h.quantile(0.50)),
		P90:  us(h.quantile(0.90)),
		P99:  us(h.quantile(0.99)),
		P999: us(h.quantile(0.999)),
		Max:  us(time.Duration(h.max)),
	}
}

func round(v float64, digits int) float64 {
	scale := math.Pow(10, float64(digits))
	return math.Round(v*scale) / scale
}

func (r *loadReport) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeText prints the report as tables, with the facts that a benchmark
// record needs first.
func (r *loadReport) writeText(w io.Writer) error {
	fmt.Fprintf(w, "command:    %s\n", r.Command)
	fmt.Fprintf(w, "started:    %s\n", r.StartedAt.Format(time.RFC3339))
	fmt.Fprintf(w, "client:     %s, GOMAXPROCS %d, %d CPUs, host %s\n", r.GoVersion, r.GOMAXPROCS, r.NumCPU, r.Hostname)
	fmt.Fprintf(w, "target:     %s\n", r.Target)
	if len(r.Nodes) > 1 || r.Nodes[0] != r.Target {
		fmt.Fprintf(w, "nodes:      %s\n", strings.Join(r.Nodes, ", "))
	}
	workload := r.Workload
	if r.Mix != "" {
		workload += " (" + r.Mix + ")"
	}
	pacing := "closed loop"
	if r.Rate > 0 {
		pacing = fmt.Sprintf("open loop at %g operations/s", r.Rate)
	}
	if r.Workload == workloadRevoke {
		fmt.Fprintf(w, "workload:   revoke, %d samples per level within %gs, polls every %gms, %gs bound per node, %d users\n",
			r.Samples, r.DurationSeconds, r.PollIntervalMillis, r.RevokeTimeoutSeconds, r.Users)
	} else {
		fmt.Fprintf(w, "workload:   %s, %s, %gs measured after %gs warm-up per level, %d users, %d sessions\n",
			workload, pacing, r.DurationSeconds, r.WarmupSeconds, r.Users, r.Sessions)
	}
	if r.Interrupted {
		fmt.Fprintln(w, "interrupted: the last level is incomplete")
	}
	fmt.Fprintln(w)

	if len(r.Levels) > 0 {
		if err := r.writeLevels(w); err != nil {
			return err
		}
	}
	if len(r.Revoke) > 0 {
		return r.writeRevoke(w)
	}
	return nil
}

func (r *loadReport) writeLevels(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workers\top\trequests\treq/s\terrors\tretried\tp50\tp90\tp99\tp99.9\tmax\t")
	for _, l := range r.Levels {
		name := r.Workload
		if len(l.Operations) > 0 {
			name = "all"
		}
		writeOpRow(tw, l.Concurrency, name, &l.opReport)
		for _, op := range slices.Sorted(maps.Keys(l.Operations)) {
			writeOpRow(tw, l.Concurrency, op, l.Operations[op])
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	for _, l := range r.Levels {
		fmt.Fprintf(w, "concurrency %d: %.3fs measured, stopped by %s", l.Concurrency, l.MeasuredSeconds, l.StoppedBy)
		if l.Relogins > 0 {
			fmt.Fprintf(w, ", %d sessions replaced by a new login", l.Relogins)
		}
		fmt.Fprintf(w, "\n  status codes: %s\n  error codes:  %s\n", formatCounts(l.StatusCodes), formatCounts(l.ErrorCodes))
	}
	return nil
}

func writeOpRow(w io.Writer, workers int, op string, o *opReport) {
	fmt.Fprintf(w, "%d\t%s\t%d\t%.1f\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t\n",
		workers, op, o.Requests, o.Throughput, o.Errors, o.Retried,
		formatMicros(o.Latency.P50), formatMicros(o.Latency.P90), formatMicros(o.Latency.P99),
		formatMicros(o.Latency.P999), formatMicros(o.Latency.Max))
}

func (r *loadReport) writeRevoke(w io.Writer) error {
	// The name column is padded by hand so that it reads left-aligned in a
	// table whose numbers are right-aligned.
	width := len("visible everywhere")
	for _, node := range r.Nodes {
		width = max(width, len("visible on "+node))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "workers\tsamples\terrors\t%-*s\tp50\tp90\tp99\tmax\t\n", width, "measure")
	for _, l := range r.Revoke {
		row := func(name string, lat latencyReport) {
			fmt.Fprintf(tw, "%d\t%d\t%d\t%-*s\t%s\t%s\t%s\t%s\t\n", l.Concurrency, l.Samples, l.Errors, width, name,
				formatMicros(lat.P50), formatMicros(lat.P90), formatMicros(lat.P99), formatMicros(lat.Max))
		}
		row("visible everywhere", l.VisibleEverywhere)
		for _, node := range r.Nodes {
			row("visible on "+node, l.PerNode[node])
		}
		row("logout request", l.Logout)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "Visibility counts from the logout response to the first 401 from GET /v1/me,")
	fmt.Fprintln(w, "one poll round trip included.")
	for _, l := range r.Revoke {
		fmt.Fprintf(w, "concurrency %d: %.3fs, %d polls\n  error codes:   %s\n  node timeouts: %s\n",
			l.Concurrency, l.Seconds, l.Polls, formatCounts(l.ErrorCodes), formatCounts(l.NodeTimeouts))
	}
	return nil
}

// formatMicros prints a latency in microseconds with a unit that keeps it
// short: 850µs, 12.3ms, 1.20s.
func formatMicros(us float64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%.0fµs", us)
	case us < 1_000_000:
		return fmt.Sprintf("%.2fms", us/1000)
	default:
		return fmt.Sprintf("%.2fs", us/1_000_000)
	}
}

// formatCounts prints a count map as "key=n" pairs sorted by key, leaving
// out zeros, or "-" when nothing is left.
func formatCounts(counts map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		if counts[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, counts[k]))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// shellJoin quotes arguments that a POSIX shell would split or expand, so
// the printed command line can be pasted back.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=.,:/@%+") == "" {
			quoted[i] = a
		} else {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(quoted, " ")
}
