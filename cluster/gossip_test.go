package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/rotorhq/rotor/fsm"
)

func TestGossipCodecRoundTrip(t *testing.T) {
	whole := time.Unix(1_900_000_000, 0)
	entries := []fsm.Revocation{
		{Session: fsm.NewID(), Until: whole},
		{Session: fsm.NewID(), Until: whole.Add(time.Nanosecond)},
		{Session: fsm.NewID(), Until: whole.Add(999 * time.Millisecond)},
	}
	msg := encodeGossip(gossipRevocations, entries)
	if want := 1 + 3*gossipEntrySize; len(msg) != want {
		t.Fatalf("message is %d bytes, want %d", len(msg), want)
	}

	got, err := decodeGossip(gossipRevocations, msg)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	wantUntil := []time.Time{whole, whole.Add(time.Second), whole.Add(time.Second)}
	if len(got) != len(entries) {
		t.Fatalf("decoded %d entries, want %d", len(got), len(entries))
	}
	for i := range got {
		if got[i].Session != entries[i].Session {
			t.Errorf("entry %d: session %s, want %s", i, got[i].Session, entries[i].Session)
		}
		if !got[i].Until.Equal(wantUntil[i]) {
			t.Errorf("entry %d: until %s, want %s (rounded up)", i, got[i].Until, wantUntil[i])
		}
	}
}

func TestEncodeBroadcastsSplitsBatches(t *testing.T) {
	entries := make([]fsm.Revocation, 2*gossipMaxEntries+1)
	for i := range entries {
		entries[i] = revocation(time.Now().Add(time.Hour))
	}
	msgs := encodeBroadcasts(entries)
	if len(msgs) != 3 {
		t.Fatalf("got %d messages, want 3", len(msgs))
	}
	var decoded []fsm.Revocation
	for i, msg := range msgs {
		if len(msg) > 1200 {
			t.Errorf("message %d is %d bytes, max 1200", i, len(msg))
		}
		got, err := decodeGossip(gossipRevocations, msg)
		if err != nil {
			t.Fatalf("decode message %d: %v", i, err)
		}
		decoded = append(decoded, got...)
	}
	if len(decoded) != len(entries) {
		t.Fatalf("decoded %d entries, want %d", len(decoded), len(entries))
	}
	for i := range entries {
		if decoded[i].Session != entries[i].Session {
			t.Errorf("entry %d: session %s, want %s", i, decoded[i].Session, entries[i].Session)
		}
	}
	if got := encodeBroadcasts(nil); len(got) != 0 {
		t.Errorf("encodeBroadcasts(nil) = %d messages, want 0", len(got))
	}
}

func TestDecodeGossipRejectsMalformed(t *testing.T) {
	valid := encodeGossip(gossipState, []fsm.Revocation{revocation(time.Now())})
	tests := []struct {
		name string
		buf  []byte
	}{
		{"empty", nil},
		{"wrong type", valid},
		{"unknown type", []byte{0x7f}},
		{"short entry", append([]byte{gossipRevocations}, make([]byte, gossipEntrySize-1)...)},
		{"trailing byte", append(encodeGossip(gossipRevocations, []fsm.Revocation{revocation(time.Now())}), 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeGossip(gossipRevocations, tt.buf); !errors.Is(err, errMalformedGossip) {
				t.Errorf("got %v, want errMalformedGossip", err)
			}
		})
	}

	got, err := decodeGossip(gossipState, []byte{gossipState})
	if err != nil || len(got) != 0 {
		t.Errorf("empty state: got %d entries, %v; want none and no error", len(got), err)
	}
}

func FuzzDecodeGossip(f *testing.F) {
	f.Add(encodeGossip(gossipRevocations, []fsm.Revocation{revocation(time.Unix(1_900_000_000, 0))}))
	f.Add(encodeGossip(gossipState, nil))
	f.Add([]byte{})
	f.Add([]byte{gossipRevocations, 1, 2, 3})
	f.Add(bytes.Repeat([]byte{0xff}, 2*gossipEntrySize+1))
	f.Fuzz(func(t *testing.T, buf []byte) {
		for _, kind := range []byte{gossipRevocations, gossipState} {
			entries, err := decodeGossip(kind, buf)
			if err != nil {
				continue
			}
			// Decoded Until values are whole seconds, so encoding them again
			// must give back the input.
			if again := encodeGossip(kind, entries); !bytes.Equal(again, buf) {
				t.Fatalf("re-encoding %x gave %x", buf, again)
			}
		}
	})
}

func TestMemberlistLogLevels(t *testing.T) {
	tests := []struct {
		line      string
		wantLevel string
		wantMsg   string
	}{
		{"[DEBUG] memberlist: Stream connection from=127.0.0.1:1234\n", "DEBUG", "Stream connection from=127.0.0.1:1234"},
		{"[INFO] memberlist: Marking node3 as failed\n", "INFO", "Marking node3 as failed"},
		{"[WARN] memberlist: Refuting a suspect message\n", "WARN", "Refuting a suspect message"},
		{"[ERR] memberlist: Decrypt packet failed\n", "ERROR", "Decrypt packet failed"},
		{"[ERROR] memberlist: Failed to compress payload\n", "ERROR", "Failed to compress payload"},
		{"[ERR] Failed to shutdown transport\n", "ERROR", "Failed to shutdown transport"},
		{"no prefix at all\n", "INFO", "no prefix at all"},
	}
	for _, tt := range tests {
		t.Run(tt.wantMsg, func(t *testing.T) {
			logger, buf := newJSONLogger(slog.LevelDebug)
			newMemberlistLogger(logger).Print(tt.line)

			rec := onlyRecord(t, buf)
			if got := rec["level"]; got != tt.wantLevel {
				t.Errorf("level: got %v, want %s", got, tt.wantLevel)
			}
			if got := rec["msg"]; got != tt.wantMsg {
				t.Errorf("msg: got %q, want %q", got, tt.wantMsg)
			}
			if got := rec["component"]; got != "memberlist" {
				t.Errorf("component: got %v, want memberlist", got)
			}
		})
	}
}

func TestMemberlistLogLimitsWarnings(t *testing.T) {
	logger, buf := newJSONLogger(slog.LevelDebug)
	ml := newMemberlistLogger(logger)
	for range 25 {
		ml.Print("[ERR] memberlist: Decrypt packet failed")
	}
	for range 5 {
		ml.Print("[DEBUG] memberlist: debug lines are not limited")
	}
	if got := len(logLines(buf)); got != 10+5 {
		t.Errorf("got %d lines, want 10 errors and 5 debug lines", got)
	}
}

func TestLogLimiterReportsSuppressed(t *testing.T) {
	l := logLimiter{limit: 2, window: time.Second}
	start := time.Unix(1_900_000_000, 0)
	for i, want := range []bool{true, true, false, false, false} {
		if ok, _ := l.allow(start.Add(time.Duration(i) * time.Millisecond)); ok != want {
			t.Errorf("line %d: allowed %v, want %v", i, ok, want)
		}
	}
	ok, suppressed := l.allow(start.Add(time.Second))
	if !ok || suppressed != 3 {
		t.Errorf("first line of the next window: allowed %v, suppressed %d; want true, 3", ok, suppressed)
	}
	if _, suppressed := l.allow(start.Add(time.Second + time.Millisecond)); suppressed != 0 {
		t.Errorf("second line of the next window: suppressed %d, want 0", suppressed)
	}
}

func TestNodeMetaFitsAndDecodes(t *testing.T) {
	m := &Membership{cfg: memberConfig("node1")}
	m.cfg.Bootstrapped = func() bool { return true }
	meta := gossipDelegate{m}.NodeMeta(512)
	var got nodeMeta
	if err := json.Unmarshal(meta, &got); err != nil {
		t.Fatalf("decode %q: %v", meta, err)
	}
	want := nodeMeta{NodeID: "node1", HTTPAddr: "127.0.0.1:18080", RaftAddr: "127.0.0.1:18090", Bootstrapped: true}
	if got != want {
		t.Errorf("metadata = %+v, want %+v", got, want)
	}
}
