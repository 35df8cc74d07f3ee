package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
)

// silentError fails the command without printing anything more, so that
// the summary stays the last line of the output.
type silentError struct{ err error }

func (e *silentError) Error() string { return e.err.Error() }
func (e *silentError) Unwrap() error { return e.err }

func jsonDecode(data []byte, v any) error { return json.Unmarshal(data, v) }

// outcomeCounts counts completions of one operation by type, in all and
// while a fault lasted.
type outcomeCounts struct {
	OK              int `json:"ok"`
	Fail            int `json:"fail"`
	Info            int `json:"info"`
	DuringFaults    int `json:"during_faults"`
	OKDuringFaults  int `json:"ok_during_faults"`
	InfoDuringFault int `json:"info_during_faults"`
}

// availability counts each client operation's outcomes.
func availability(history []Event) map[string]*outcomeCounts {
	ops, err := PairOps(history)
	if err != nil {
		return nil
	}
	windows := faultWindows(ops)
	during := func(t int64) bool {
		for _, w := range windows {
			if w.start <= t && t <= w.end {
				return true
			}
		}
		return false
	}
	out := make(map[string]*outcomeCounts)
	for _, op := range ops {
		if op.F() == opNemesis {
			continue
		}
		c, ok := out[op.F()]
		if !ok {
			c = &outcomeCounts{}
			out[op.F()] = c
		}
		faulty := during(op.CallTime())
		switch op.Type() {
		case typeOK:
			c.OK++
			if faulty {
				c.OKDuringFaults++
			}
		case typeFail:
			c.Fail++
		default:
			c.Info++
			if faulty {
				c.InfoDuringFault++
			}
		}
		if faulty {
			c.DuringFaults++
		}
	}
	return out
}

func writeAvailability(w io.Writer, counts map[string]*outcomeCounts) {
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "operation\tok\tfail\tinfo\tduring faults\tok during faults\t")
	for _, n := range names {
		c := counts[n]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t\n", n, c.OK, c.Fail, c.Info, c.DuringFaults, percent(c.OKDuringFaults, c.DuringFaults))
	}
	tw.Flush()
}

func percent(part, whole int) string {
	if whole == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(part)/float64(whole))
}

// resultsFile is results.json.
type resultsFile struct {
	Command      string                    `json:"command"`
	Nemeses      []string                  `json:"nemeses"`
	InjectBug    string                    `json:"inject_bug,omitempty"`
	TimeLimit    string                    `json:"time_limit"`
	Faults       []faultRecord             `json:"faults"`
	Checkers     []checkerRecord           `json:"checkers"`
	Availability map[string]*outcomeCounts `json:"availability"`
	Passed       int                       `json:"passed"`
	Failed       int                       `json:"failed"`
}

type faultRecord struct {
	Number  int      `json:"number"`
	StartS  float64  `json:"start_s"`
	EndS    float64  `json:"end_s"`
	Fault   string   `json:"fault"`
	Excused []string `json:"excused_nodes,omitempty"`
}

type checkerRecord struct {
	Name           string  `json:"name"`
	Valid          bool    `json:"valid"`
	Detail         string  `json:"detail"`
	Counterexample []Event `json:"counterexample,omitempty"`
}

// writeResults writes results.json and results.txt into the store.
func writeResults(cfg *testConfig, history []Event, results []Result) error {
	out := resultsFile{
		Command:      "go run ./jepsen test " + strings.Join(cfg.args, " "),
		Nemeses:      orNoneList(cfg.nemeses),
		InjectBug:    cfg.injectBug,
		TimeLimit:    cfg.timeLimit.String(),
		Availability: availability(history),
	}
	if ops, err := PairOps(history); err == nil {
		for i, w := range faultWindows(ops) {
			out.Faults = append(out.Faults, faultRecord{Number: i + 1, StartS: float64(w.start) / 1e9,
				EndS: float64(w.end) / 1e9, Fault: w.desc, Excused: sortedKeys(w.nodes)})
		}
	}
	for _, r := range results {
		out.Checkers = append(out.Checkers, checkerRecord{r.Name, r.Valid, r.Detail, r.Counterexample})
		if r.Valid {
			out.Passed++
		} else {
			out.Failed++
		}
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cfg.store, "results.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}

	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\nFaults:\n", out.Command)
	for _, f := range out.Faults {
		fmt.Fprintf(&b, "  F%d  %6.1fs to %6.1fs  %s\n", f.Number, f.StartS, f.EndS, f.Fault)
	}
	b.WriteString("\nAvailability (reported, not judged):\n")
	writeAvailability(&b, out.Availability)
	b.WriteString("\n")
	Summarize(results, &b)
	return os.WriteFile(filepath.Join(cfg.store, "results.txt"), []byte(b.String()), 0o644)
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
