package api

import (
	"testing"
	"time"
)

func TestParseLoginLimit(t *testing.T) {
	good := map[string]LoginLimit{
		"10/15m":  {Burst: 10, Per: 15 * time.Minute},
		" 3 / 1s": {Burst: 3, Per: time.Second},
		"0":       {},
	}
	for in, want := range good {
		got, err := ParseLoginLimit(in)
		if err != nil || got != want {
			t.Errorf("ParseLoginLimit(%q): got %+v, %v, want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "10", "10/", "/1m", "-1/1m", "0/1m", "5/0s", "5/-1m", "five/1m", "5/1 minute"} {
		if _, err := ParseLoginLimit(in); err == nil {
			t.Errorf("ParseLoginLimit(%q): got no error", in)
		}
	}
}

func TestLoginLimiterRefills(t *testing.T) {
	l := newLoginLimiter(LoginLimit{Burst: 2, Per: time.Minute}, LoginLimit{})
	now := time.Unix(1_000_000, 0)
	l.failed("kim", "192.0.2.1", now)
	if w := l.wait("kim", "192.0.2.1", now); w != 0 {
		t.Fatalf("after one failure of two: got wait %s, want 0", w)
	}
	l.failed("kim", "192.0.2.1", now)
	w := l.wait("kim", "192.0.2.1", now)
	if w <= 0 || w > 30*time.Second {
		t.Fatalf("after two failures: got wait %s, want up to 30s (one failure refills every 30s)", w)
	}
	if w := l.wait("kim", "192.0.2.1", now.Add(w)); w != 0 {
		t.Errorf("after waiting: got wait %s, want 0", w)
	}
	if w := l.wait("lee", "192.0.2.1", now); w != 0 {
		t.Errorf("another user: got wait %s, want 0 (the address limit is off)", w)
	}
}

func TestLimiterTableBounded(t *testing.T) {
	table := newLimiterTable(LoginLimit{Burst: 1, Per: time.Hour})
	now := time.Unix(1_000_000, 0)
	for i := range maxLimiterKeys + 10 {
		table.fail(string(rune(i))+"-user", now)
	}
	if n := len(table.keys); n > maxLimiterKeys {
		t.Fatalf("table holds %d keys, want at most %d", n, maxLimiterKeys)
	}
}
