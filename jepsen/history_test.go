package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/rotorhq/rotor/token"
)

// eventOption sets optional fields of a hand-built event.
type eventOption func(*Event)

func sess(s string) eventOption { return func(e *Event) { e.Session = s } }
func user(u string) eventOption { return func(e *Event) { e.User = u } }
func gen(g uint64) eventOption  { return func(e *Event) { e.Generation = g } }
func succ(s string) eventOption { return func(e *Event) { e.Successor = s } }
func code(c string) eventOption { return func(e *Event) { e.Code = c } }
func honest() eventOption       { return func(e *Event) { e.Honest = true } }
func purposeful() eventOption   { return func(e *Event) { e.Purposeful = true } }
func final(st string, g uint64) eventOption {
	return func(e *Event) { e.State = st; e.FinalGeneration = g }
}

// ev builds one event. Index is set by hist.
func ev(process int, typ, f string, time int64, opts ...eventOption) Event {
	e := Event{Process: process, Type: typ, F: f, Time: time}
	for _, opt := range opts {
		opt(&e)
	}
	return e
}

// hist numbers the events in order.
func hist(events ...Event) []Event {
	for i := range events {
		events[i].Index = i
	}
	return events
}

func TestHistoryRoundTrip(t *testing.T) {
	in := hist(
		ev(1, typeInvoke, opRefresh, 10, sess("s1"), user("u1"), gen(3), honest()),
		ev(1, typeOK, opRefresh, 20, sess("s1"), succ("abcd")),
		ev(2, typeInvoke, opLogout, 30, sess("s1"), purposeful()),
		ev(2, typeFail, opLogout, 40, code("unavailable")),
		ev(3, typeInvoke, opReadSession, 50, sess("s1")),
		ev(3, typeOK, opReadSession, 60, sess("s1"), final(stateLive, 4)),
	)
	var buf bytes.Buffer
	if err := WriteHistory(&buf, in); err != nil {
		t.Fatalf("WriteHistory: %v", err)
	}
	if got, want := strings.Count(buf.String(), "\n"), len(in); got != want {
		t.Errorf("got %d lines, want %d", got, want)
	}

	out, err := ReadHistory(&buf)
	if err != nil {
		t.Fatalf("ReadHistory: %v", err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("got %+v, want %+v", out, in)
	}
}

func TestHistoryReadRejects(t *testing.T) {
	cases := []struct {
		name, input string
	}{
		{"unknown field", `{"index":0,"process":1,"type":"invoke","f":"login","time":1,"tokn":"x"}`},
		{"invalid json", `{"index":0,`},
		{"wrong type", `{"index":"zero"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := ReadHistory(strings.NewReader(c.input)); err == nil {
				t.Errorf("got nil error, want one")
			}
		})
	}
}

func TestHistoryReadSkipsBlankLines(t *testing.T) {
	input := "\n" + `{"index":0,"process":1,"type":"invoke","f":"login","time":1}` + "\n\n"
	events, err := ReadHistory(strings.NewReader(input))
	if err != nil {
		t.Fatalf("ReadHistory: %v", err)
	}
	if got := len(events); got != 1 {
		t.Errorf("got %d events, want 1", got)
	}
}

func TestHistoryTokenFields(t *testing.T) {
	keyring, err := token.NewKeyring(bytes.Repeat([]byte{7}, token.MinSecretLen))
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	var id, nonce [16]byte
	for i := range id {
		id[i] = byte(i + 1)
		nonce[i] = byte(200 - i)
	}
	refresh := keyring.MintRefresh(id, 0x0102030405, nonce)

	session, generation, err := ParseRefreshFields(refresh)
	if err != nil {
		t.Fatalf("ParseRefreshFields: %v", err)
	}
	if want := base64.RawURLEncoding.EncodeToString(id[:]); session != want {
		t.Errorf("got session %q, want %q", session, want)
	}
	if generation != 0x0102030405 {
		t.Errorf("got generation %d, want %d", generation, 0x0102030405)
	}

	digest := TokenDigest(refresh)
	if len(digest) != 16 {
		t.Errorf("got digest length %d, want 16", len(digest))
	}
	if strings.Contains(refresh, digest) {
		t.Errorf("digest %q is part of the token", digest)
	}
}

func TestHistoryTokenFieldsRejects(t *testing.T) {
	cases := []struct{ name, token string }{
		{"no prefix", "abc"},
		{"not base64url", "rtr1_!!!!"},
		{"short body", "rtr1_" + base64.RawURLEncoding.EncodeToString(make([]byte, 23))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := ParseRefreshFields(c.token); err == nil {
				t.Errorf("got nil error, want one")
			}
		})
	}
}

func TestHistoryPairOps(t *testing.T) {
	h := hist(
		ev(1, typeInvoke, opLogin, 1, user("u1")),
		ev(2, typeInvoke, opRefresh, 2, sess("s1"), gen(1)),
		ev(1, typeOK, opLogin, 3, sess("s1")),
		ev(1, typeInvoke, opRefresh, 4, sess("s1"), gen(1)),
	)
	ops, err := PairOps(h)
	if err != nil {
		t.Fatalf("PairOps: %v", err)
	}
	if len(ops) != 3 {
		t.Fatalf("got %d ops, want 3", len(ops))
	}
	if got := ops[0].Session(); got != "s1" {
		t.Errorf("login session: got %q, want s1", got)
	}
	if got := ops[0].Completion.Index; got != 2 {
		t.Errorf("login completion: got event %d, want 2", got)
	}
	for _, i := range []int{1, 2} {
		op := ops[i]
		if !op.Open || op.Type() != typeInfo {
			t.Errorf("op %d: got open=%v type=%s, want open info", i, op.Open, op.Type())
		}
		if op.ReturnTime() != math.MaxInt64 {
			t.Errorf("op %d: got return time %d, want MaxInt64", i, op.ReturnTime())
		}
		if got := len(op.Events()); got != 1 {
			t.Errorf("op %d: got %d events, want 1", i, got)
		}
	}
}

func TestHistoryPairOpsRejects(t *testing.T) {
	cases := []struct {
		name    string
		history []Event
	}{
		{"two invokes", hist(
			ev(1, typeInvoke, opLogin, 1),
			ev(1, typeInvoke, opLogin, 2),
		)},
		{"orphan completion", hist(
			ev(1, typeOK, opLogin, 1),
		)},
		{"mismatched f", hist(
			ev(1, typeInvoke, opLogin, 1),
			ev(1, typeOK, opRefresh, 2),
		)},
		{"unknown type", hist(
			ev(1, "done", opLogin, 1),
		)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := PairOps(c.history)
			if !errors.Is(err, errMalformedHistory) {
				t.Errorf("got %v, want errMalformedHistory", err)
			}
		})
	}
}
