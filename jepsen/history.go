package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// Event types. An "info" completion means the outcome is unknown: the request
// was sent but the client saw a timeout, a dropped connection or a 503, so the
// operation may or may not have taken effect.
const (
	typeInvoke = "invoke"
	typeOK     = "ok"
	typeFail   = "fail"
	typeInfo   = "info"
)

// Operation names recorded in the F field.
const (
	opLogin       = "login"
	opRefresh     = "refresh"
	opLogout      = "logout"
	opRevokeUser  = "revoke-user"
	opValidate    = "validate"
	opReadSession = "read-session"
	opEnable      = "enable-user"
	opNemesis     = "nemesis"
)

// nemesisProcess is the Process of the nemesis's events: it invokes a fault
// when the fault starts and completes it when the fault is healed.
const nemesisProcess = -1

// Session states that a final read-session reports in Event.State.
const (
	stateLive    = "live"
	stateRevoked = "revoked"
	stateExpired = "expired"
	stateMissing = "missing"
)

// Error codes from the API that the checkers interpret.
const (
	codeReused  = "refresh_token_reused"
	codeRevoked = "session_revoked"
)

// Event is one line of a history: the invocation or the completion of one
// operation by one client process. A process runs one operation at a time, so
// its next event after an invoke is that operation's completion.
type Event struct {
	Index   int    `json:"index"`   // position in the history, from 0
	Process int    `json:"process"` // client id
	Type    string `json:"type"`    // invoke, ok, fail or info
	F       string `json:"f"`       // operation name
	Time    int64  `json:"time"`    // monotonic nanoseconds since the run started
	Node    string `json:"node,omitempty"`
	Session string `json:"session,omitempty"` // session id, base64url as in the API
	User    string `json:"user,omitempty"`    // user id
	// Generation is the generation of the presented refresh token. On a
	// login's ok completion it is the generation of the returned token.
	Generation uint64 `json:"generation,omitempty"`
	Token      string `json:"token,omitempty"`     // TokenDigest of the presented refresh token
	Successor  string `json:"successor,omitempty"` // TokenDigest of the returned refresh token
	Code       string `json:"code,omitempty"`      // API error code of a fail
	// Honest marks a client that never replays a refresh token on purpose.
	// It retries a token only after an info completion, inside the grace window.
	Honest bool `json:"honest,omitempty"`
	// Purposeful marks an operation meant to end a session, such as a
	// deliberate replay of an old token to trigger reuse detection.
	Purposeful bool `json:"purposeful,omitempty"`
	// State and FinalGeneration are set on a read-session's ok completion:
	// live, revoked, expired or missing, and the session's current generation
	// when the record exists.
	State           string `json:"state,omitempty"`
	FinalGeneration uint64 `json:"final_generation,omitempty"`
	// Latency is the operation's duration in nanoseconds, set on completions.
	Latency int64 `json:"latency,omitempty"`
	// Fault and Nodes describe a nemesis event: what the fault is and which
	// nodes it may keep from hearing the leader.
	Fault string   `json:"fault,omitempty"`
	Nodes []string `json:"nodes,omitempty"`
}

// WriteHistory writes events as JSON lines, one event per line.
func WriteHistory(w io.Writer, events []Event) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for i := range events {
		if err := enc.Encode(&events[i]); err != nil {
			return fmt.Errorf("write history event %d: %w", i, err)
		}
	}
	return bw.Flush()
}

// maxHistoryLine bounds one JSON line, so a corrupt file cannot exhaust memory.
const maxHistoryLine = 1 << 20

// ReadHistory reads JSON lines written by WriteHistory. Blank lines are
// skipped. Unknown fields are rejected, so a typo in a hand-written history
// fails loudly instead of being dropped.
func ReadHistory(r io.Reader) ([]Event, error) {
	scanner := bufio.NewScanner(r)
	scanner.Buffer(make([]byte, 0, 4096), maxHistoryLine)

	var events []Event
	line := 0
	for scanner.Scan() {
		line++
		text := strings.TrimSpace(scanner.Text())
		if text == "" {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(text))
		dec.DisallowUnknownFields()
		var e Event
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("read history line %d: %w", line, err)
		}
		events = append(events, e)
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("read history after line %d: %w", line, err)
	}
	return events, nil
}

// TokenDigest returns the first 16 hex digits of the SHA-256 of a token, so a
// history can tell tokens apart without containing any.
func TokenDigest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}

// refreshTokenPrefix starts every refresh token of format version 1.
const refreshTokenPrefix = "rtr1_"

// ParseRefreshFields extracts the session id (base64url, as the API prints
// it) and the generation from a refresh token. A version 1 token is the
// prefix and the base64url encoding of the 16-byte session id, the 8-byte
// big-endian generation and a MAC, which is not checked here.
func ParseRefreshFields(token string) (session string, generation uint64, err error) {
	encoded, ok := strings.CutPrefix(token, refreshTokenPrefix)
	if !ok {
		return "", 0, fmt.Errorf("invalid refresh token: missing prefix %q", refreshTokenPrefix)
	}
	body, err := base64.RawURLEncoding.DecodeString(encoded)
	if err != nil {
		return "", 0, fmt.Errorf("invalid refresh token: not base64url: %w", err)
	}
	if len(body) < 16+8 {
		return "", 0, fmt.Errorf("invalid refresh token: body is %d bytes, want at least 24", len(body))
	}
	session = base64.RawURLEncoding.EncodeToString(body[:16])
	generation = binary.BigEndian.Uint64(body[16:24])
	return session, generation, nil
}

// Op is an invocation paired with its completion.
type Op struct {
	Invoke     Event
	Completion Event
	// Open is true when the history ends before the completion. The
	// completion is then a synthesized info event at the end of time.
	Open bool
}

// Type returns the completion type: ok, fail or info.
func (o Op) Type() string { return o.Completion.Type }

// F returns the operation name.
func (o Op) F() string { return o.Invoke.F }

// Session returns the session the operation names, from the invoke or, for a
// login, from its completion.
func (o Op) Session() string {
	if o.Invoke.Session != "" {
		return o.Invoke.Session
	}
	return o.Completion.Session
}

// User returns the user the operation names, from the invoke or its completion.
func (o Op) User() string {
	if o.Invoke.User != "" {
		return o.Invoke.User
	}
	return o.Completion.User
}

// CallTime returns the invocation time.
func (o Op) CallTime() int64 { return o.Invoke.Time }

// ReturnTime returns the completion time, or math.MaxInt64 when the outcome
// is unknown, because an info operation may take effect at any later time.
func (o Op) ReturnTime() int64 {
	if o.Completion.Type == typeInfo {
		return math.MaxInt64
	}
	return o.Completion.Time
}

// Events returns the events that make up the operation, omitting a
// synthesized completion.
func (o Op) Events() []Event {
	if o.Open {
		return []Event{o.Invoke}
	}
	return []Event{o.Invoke, o.Completion}
}

var errMalformedHistory = errors.New("malformed history")

// PairOps matches each invoke with the next event of the same process, which
// must be its completion, and returns the operations in invocation order. An
// invoke that has no completion becomes an open info operation.
func PairOps(history []Event) ([]Op, error) {
	var ops []Op
	pending := make(map[int]int) // process -> index in ops of its open invoke

	for _, e := range history {
		switch e.Type {
		case typeInvoke:
			if i, busy := pending[e.Process]; busy {
				return nil, fmt.Errorf("%w: process %d invokes at event %d while its invoke at event %d is open",
					errMalformedHistory, e.Process, e.Index, ops[i].Invoke.Index)
			}
			pending[e.Process] = len(ops)
			ops = append(ops, Op{Invoke: e})
		case typeOK, typeFail, typeInfo:
			i, busy := pending[e.Process]
			if !busy {
				return nil, fmt.Errorf("%w: event %d completes nothing for process %d", errMalformedHistory, e.Index, e.Process)
			}
			if e.F != ops[i].Invoke.F {
				return nil, fmt.Errorf("%w: event %d completes %q but process %d invoked %q",
					errMalformedHistory, e.Index, e.F, e.Process, ops[i].Invoke.F)
			}
			ops[i].Completion = e
			delete(pending, e.Process)
		default:
			return nil, fmt.Errorf("%w: event %d has unknown type %q", errMalformedHistory, e.Index, e.Type)
		}
	}

	for _, i := range pending {
		inv := ops[i].Invoke
		ops[i].Open = true
		ops[i].Completion = Event{Index: -1, Process: inv.Process, Type: typeInfo, F: inv.F, Time: math.MaxInt64}
	}
	return ops, nil
}
