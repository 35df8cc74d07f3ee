package cluster

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/rotorhq/rotor/internal/testnode"
)

// newJSONLogger returns a slog.Logger that writes JSON lines at level and
// above into the returned buffer.
func newJSONLogger(level slog.Level) (*slog.Logger, *testnode.Buffer) {
	buf := &testnode.Buffer{}
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: level})), buf
}

// logLines splits the buffer into raw JSON lines.
func logLines(buf *testnode.Buffer) []string {
	text := strings.TrimSpace(buf.String())
	if text == "" {
		return nil
	}
	return strings.Split(text, "\n")
}

// onlyRecord decodes the single JSON line in buf.
func onlyRecord(t *testing.T, buf *testnode.Buffer) map[string]any {
	t.Helper()
	lines := logLines(buf)
	if len(lines) != 1 {
		t.Fatalf("got %d log lines, want 1: %q", len(lines), lines)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("decode log line %q: %v", lines[0], err)
	}
	return rec
}

func TestHCLogLevels(t *testing.T) {
	tests := []struct {
		name      string
		log       func(l hclog.Logger)
		wantLevel string
	}{
		{"trace", func(l hclog.Logger) { l.Trace("event", "peer", "n2") }, "DEBUG-4"},
		{"debug", func(l hclog.Logger) { l.Debug("event", "peer", "n2") }, "DEBUG"},
		{"info", func(l hclog.Logger) { l.Info("event", "peer", "n2") }, "INFO"},
		{"warn", func(l hclog.Logger) { l.Warn("event", "peer", "n2") }, "WARN"},
		{"error", func(l hclog.Logger) { l.Error("event", "peer", "n2") }, "ERROR"},
		{"log info", func(l hclog.Logger) { l.Log(hclog.Info, "event", "peer", "n2") }, "INFO"},
		{"no level", func(l hclog.Logger) { l.Log(hclog.NoLevel, "event", "peer", "n2") }, "INFO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, buf := newJSONLogger(slog.LevelDebug - 4)
			tt.log(NewHCLogger(logger, "raft"))

			rec := onlyRecord(t, buf)
			if got := rec["level"]; got != tt.wantLevel {
				t.Errorf("level: got %v, want %s", got, tt.wantLevel)
			}
			if got := rec["msg"]; got != "event" {
				t.Errorf("msg: got %v, want event", got)
			}
			if got := rec["peer"]; got != "n2" {
				t.Errorf("peer: got %v, want n2", got)
			}
			if got := rec["component"]; got != "raft" {
				t.Errorf("component: got %v, want raft", got)
			}
		})
	}
}

func TestHCLogOffLevel(t *testing.T) {
	logger, buf := newJSONLogger(slog.LevelDebug - 4)
	NewHCLogger(logger, "raft").Log(hclog.Off, "event")

	if got := buf.String(); got != "" {
		t.Errorf("got output %q, want none", got)
	}
}

func TestHCLogBelowHandlerLevel(t *testing.T) {
	logger, buf := newJSONLogger(slog.LevelInfo)
	l := NewHCLogger(logger, "raft")
	l.Trace("trace event")
	l.Debug("debug event")

	if got := buf.String(); got != "" {
		t.Errorf("got output %q, want none", got)
	}
}

func TestHCLogFmtArgs(t *testing.T) {
	logger, buf := newJSONLogger(slog.LevelInfo)
	NewHCLogger(logger, "raft").Info("event", "addr", hclog.Fmt("%s:%d", "127.0.0.1", 7000), "term", 3)

	rec := onlyRecord(t, buf)
	if got := rec["addr"]; got != "127.0.0.1:7000" {
		t.Errorf("addr: got %v, want 127.0.0.1:7000", got)
	}
	if got := rec["term"]; got != float64(3) {
		t.Errorf("term: got %v, want 3", got)
	}
}

func TestHCLogWith(t *testing.T) {
	logger, buf := newJSONLogger(slog.LevelInfo)
	base := NewHCLogger(logger, "raft")
	child := base.With("term", 7)
	child.Info("event")

	rec := onlyRecord(t, buf)
	if got := rec["term"]; got != float64(7) {
		t.Errorf("term: got %v, want 7", got)
	}
	if got := rec["component"]; got != "raft" {
		t.Errorf("component: got %v, want raft", got)
	}
	if got := child.ImpliedArgs(); len(got) != 2 || got[0] != "term" || got[1] != 7 {
		t.Errorf("child ImpliedArgs: got %v, want [term 7]", got)
	}
	if got := base.ImpliedArgs(); len(got) != 0 {
		t.Errorf("base ImpliedArgs: got %v, want none", got)
	}
}

func TestHCLogWithKeepsParent(t *testing.T) {
	logger, buf := newJSONLogger(slog.LevelInfo)
	base := NewHCLogger(logger, "raft")
	_ = base.With("term", 7)
	base.Info("event")

	rec := onlyRecord(t, buf)
	if _, ok := rec["term"]; ok {
		t.Errorf("parent record has term %v, want no term key", rec["term"])
	}
}

func TestHCLogNamed(t *testing.T) {
	tests := []struct {
		name          string
		derive        func(l hclog.Logger) hclog.Logger
		wantName      string
		wantComponent string
	}{
		{"named", func(l hclog.Logger) hclog.Logger { return l.Named("snapshot") }, "raft.snapshot", "raft.snapshot"},
		{"named twice", func(l hclog.Logger) hclog.Logger { return l.Named("a").Named("b") }, "raft.a.b", "raft.a.b"},
		{"reset named", func(l hclog.Logger) hclog.Logger { return l.ResetNamed("transport") }, "transport", "transport"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, buf := newJSONLogger(slog.LevelInfo)
			l := tt.derive(NewHCLogger(logger, "raft"))
			l.Info("event")

			if got := l.Name(); got != tt.wantName {
				t.Errorf("Name: got %q, want %q", got, tt.wantName)
			}
			rec := onlyRecord(t, buf)
			if got := rec["component"]; got != tt.wantComponent {
				t.Errorf("component: got %v, want %s", got, tt.wantComponent)
			}
		})
	}
}

// A JSON log line must not repeat a key, because many log stores reject or
// mis-index such documents.
func TestHCLogNamedSingleComponent(t *testing.T) {
	tests := []struct {
		name   string
		derive func(l hclog.Logger) hclog.Logger
	}{
		{"root", func(l hclog.Logger) hclog.Logger { return l }},
		{"named", func(l hclog.Logger) hclog.Logger { return l.Named("snapshot") }},
		{"reset named", func(l hclog.Logger) hclog.Logger { return l.ResetNamed("transport") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, buf := newJSONLogger(slog.LevelInfo)
			tt.derive(NewHCLogger(logger, "raft")).Info("event")

			line := strings.TrimSpace(buf.String())
			if got := strings.Count(line, `"component":`); got != 1 {
				t.Errorf("component keys: got %d, want 1 in %s", got, line)
			}
		})
	}
}

func TestHCLogNamedKeepsArgs(t *testing.T) {
	logger, buf := newJSONLogger(slog.LevelInfo)
	l := NewHCLogger(logger, "raft").With("node_id", "n1").Named("snapshot")
	l.Info("event")

	rec := onlyRecord(t, buf)
	if got := rec["node_id"]; got != "n1" {
		t.Errorf("node_id: got %v, want n1", got)
	}
	if got := l.ImpliedArgs(); len(got) != 2 || got[0] != "node_id" || got[1] != "n1" {
		t.Errorf("ImpliedArgs: got %v, want [node_id n1]", got)
	}
}

func TestHCLogLevelQueries(t *testing.T) {
	tests := []struct {
		name         string
		handlerLevel slog.Level
		wantTrace    bool
		wantDebug    bool
		wantInfo     bool
		wantWarn     bool
		wantError    bool
		wantLevel    hclog.Level
	}{
		{"trace", slog.LevelDebug - 4, true, true, true, true, true, hclog.Trace},
		{"debug", slog.LevelDebug, false, true, true, true, true, hclog.Debug},
		{"info", slog.LevelInfo, false, false, true, true, true, hclog.Info},
		{"warn", slog.LevelWarn, false, false, false, true, true, hclog.Warn},
		{"error", slog.LevelError, false, false, false, false, true, hclog.Error},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, _ := newJSONLogger(tt.handlerLevel)
			l := NewHCLogger(logger, "raft")

			if got := l.IsTrace(); got != tt.wantTrace {
				t.Errorf("IsTrace: got %v, want %v", got, tt.wantTrace)
			}
			if got := l.IsDebug(); got != tt.wantDebug {
				t.Errorf("IsDebug: got %v, want %v", got, tt.wantDebug)
			}
			if got := l.IsInfo(); got != tt.wantInfo {
				t.Errorf("IsInfo: got %v, want %v", got, tt.wantInfo)
			}
			if got := l.IsWarn(); got != tt.wantWarn {
				t.Errorf("IsWarn: got %v, want %v", got, tt.wantWarn)
			}
			if got := l.IsError(); got != tt.wantError {
				t.Errorf("IsError: got %v, want %v", got, tt.wantError)
			}
			if got := l.GetLevel(); got != tt.wantLevel {
				t.Errorf("GetLevel: got %v, want %v", got, tt.wantLevel)
			}
		})
	}
}

func TestHCLogSetLevelIgnored(t *testing.T) {
	logger, buf := newJSONLogger(slog.LevelInfo)
	l := NewHCLogger(logger, "raft")
	l.SetLevel(hclog.Trace)
	l.Debug("event")

	if got := l.GetLevel(); got != hclog.Info {
		t.Errorf("GetLevel: got %v, want %v", got, hclog.Info)
	}
	if got := buf.String(); got != "" {
		t.Errorf("got output %q, want none", got)
	}
}

func TestHCLogStandardLogger(t *testing.T) {
	logger, buf := newJSONLogger(slog.LevelInfo)
	NewHCLogger(logger, "raft").StandardLogger(nil).Print("memberlist: joined")

	rec := onlyRecord(t, buf)
	if got := rec["msg"]; got != "memberlist: joined" {
		t.Errorf("msg: got %v, want %q", got, "memberlist: joined")
	}
	if got := rec["level"]; got != "INFO" {
		t.Errorf("level: got %v, want INFO", got)
	}
	if got := rec["component"]; got != "raft" {
		t.Errorf("component: got %v, want raft", got)
	}
}

func TestHCLogStandardWriter(t *testing.T) {
	logger, buf := newJSONLogger(slog.LevelInfo)
	w := NewHCLogger(logger, "raft").StandardWriter(nil)
	if _, err := w.Write([]byte("written line\n")); err != nil {
		t.Fatalf("Write: %v", err)
	}

	rec := onlyRecord(t, buf)
	if got := rec["msg"]; got != "written line" {
		t.Errorf("msg: got %v, want %q", got, "written line")
	}
}
