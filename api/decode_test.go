package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// decodeTarget is a request body shape with a string, a number and a list.
type decodeTarget struct {
	Name  string   `json:"name"`
	Count int      `json:"count"`
	Tags  []string `json:"tags"`
}

func newBodyRequest(body, contentType string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/v1/test", strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

// asAPIError returns err as *Error, failing the test when it is not one.
func asAPIError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error: got %v (%T), want *Error", err, err)
	}
	return e
}

func TestDecodeJSONValid(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		contentType string
	}{
		{"json", `{"name":"a","count":2,"tags":["x"]}`, "application/json"},
		{"json with charset", `{"name":"a","count":2,"tags":["x"]}`, "application/json; charset=utf-8"},
		{"no content type", `{"name":"a","count":2,"tags":["x"]}`, ""},
		{"surrounding space", " \n{\"name\":\"a\",\"count\":2,\"tags\":[\"x\"]}\n ", "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStatelessServer(t)
			var got decodeTarget
			err := s.decodeJSON(httptest.NewRecorder(), newBodyRequest(tt.body, tt.contentType), &got, false)
			if err != nil {
				t.Fatalf("decodeJSON: got %v, want nil", err)
			}
			if got.Name != "a" {
				t.Errorf("name: got %q, want a", got.Name)
			}
			if got.Count != 2 {
				t.Errorf("count: got %d, want 2", got.Count)
			}
			if len(got.Tags) != 1 || got.Tags[0] != "x" {
				t.Errorf("tags: got %v, want [x]", got.Tags)
			}
		})
	}
}

func TestDecodeJSONEmptyAllowed(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"empty", ""},
		{"whitespace", " \n\t "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStatelessServer(t)
			got := decodeTarget{Name: "unchanged"}
			err := s.decodeJSON(httptest.NewRecorder(), newBodyRequest(tt.body, "application/json"), &got, true)
			if err != nil {
				t.Fatalf("decodeJSON: got %v, want nil", err)
			}
			if got.Name != "unchanged" {
				t.Errorf("name: got %q, want the value to stay unchanged", got.Name)
			}
		})
	}
}

func TestDecodeJSONRejects(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		contentType string
		allowEmpty  bool
		wantStatus  int
		wantCode    Code
		wantDetail  []string
	}{
		{"unknown field", `{"nmae":"a"}`, "application/json", false,
			http.StatusBadRequest, CodeInvalidRequest, []string{`unknown field "nmae"`}},
		{"wrong type", `{"count":"two"}`, "application/json", false,
			http.StatusBadRequest, CodeInvalidRequest, []string{`field "count"`, "int", "string"}},
		{"wrong element type", `{"tags":[1]}`, "application/json", false,
			http.StatusBadRequest, CodeInvalidRequest, []string{`field "tags`, "string", "number"}},
		{"trailing object", `{"name":"a"} {}`, "application/json", false,
			http.StatusBadRequest, CodeInvalidRequest, []string{"data after the JSON object"}},
		{"trailing text", `{"name":"a"}x`, "application/json", false,
			http.StatusBadRequest, CodeInvalidRequest, []string{"data after the JSON object"}},
		{"trailing brace", `{"name":"a"}}`, "application/json", false,
			http.StatusBadRequest, CodeInvalidRequest, []string{"data after the JSON object"}},
		{"empty denied", "", "application/json", false,
			http.StatusBadRequest, CodeInvalidRequest, []string{"empty"}},
		{"whitespace denied", "  \n", "application/json", false,
			http.StatusBadRequest, CodeInvalidRequest, []string{"empty"}},
		{"null", "null", "application/json", true,
			http.StatusBadRequest, CodeInvalidRequest, []string{"must be a JSON object"}},
		{"array", "[]", "application/json", true,
			http.StatusBadRequest, CodeInvalidRequest, []string{"must be a JSON object"}},
		{"string", `"x"`, "application/json", true,
			http.StatusBadRequest, CodeInvalidRequest, []string{"must be a JSON object"}},
		{"number", "1", "application/json", true,
			http.StatusBadRequest, CodeInvalidRequest, []string{"must be a JSON object"}},
		{"truncated", `{"name":`, "application/json", false,
			http.StatusBadRequest, CodeInvalidRequest, []string{"unexpected end"}},
		{"syntax error", `{"name" "a"}`, "application/json", false,
			http.StatusBadRequest, CodeInvalidRequest, []string{"malformed JSON at byte"}},
		{"invalid UTF-8", "{\"name\":\"\xff\"}", "application/json", false,
			http.StatusBadRequest, CodeInvalidRequest, []string{"UTF-8"}},
		{"oversize", `{"name":"` + strings.Repeat("a", testMaxBodyBytes-11+1) + `"}`, "application/json", false,
			http.StatusRequestEntityTooLarge, CodePayloadTooLarge, []string{"exceeds 1024 bytes"}},
		{"text plain", `{"name":"a"}`, "text/plain", false,
			http.StatusUnsupportedMediaType, CodeInvalidRequest, []string{`"text/plain"`, "application/json"}},
		{"form", `name=a`, "application/x-www-form-urlencoded", false,
			http.StatusUnsupportedMediaType, CodeInvalidRequest, []string{"application/x-www-form-urlencoded"}},
		{"unparsable content type", `{"name":"a"}`, "application/json; =", false,
			http.StatusUnsupportedMediaType, CodeInvalidRequest, []string{"not supported"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStatelessServer(t)
			var got decodeTarget
			err := s.decodeJSON(httptest.NewRecorder(), newBodyRequest(tt.body, tt.contentType), &got, tt.allowEmpty)

			e := asAPIError(t, err)
			if e.Code != tt.wantCode {
				t.Errorf("code: got %q, want %q", e.Code, tt.wantCode)
			}
			if got := e.status(); got != tt.wantStatus {
				t.Errorf("status: got %d, want %d", got, tt.wantStatus)
			}
			for _, part := range tt.wantDetail {
				if !strings.Contains(e.Detail, part) {
					t.Errorf("detail: got %q, want it to contain %q", e.Detail, part)
				}
			}
		})
	}
}

func TestDecodeJSONOversizeBoundary(t *testing.T) {
	// The body is exactly MaxBodyBytes long, the largest that passes.
	body := `{"name":"` + strings.Repeat("a", testMaxBodyBytes-11) + `"}`
	if len(body) != testMaxBodyBytes {
		t.Fatalf("body length: got %d, want %d", len(body), testMaxBodyBytes)
	}
	s := newStatelessServer(t)
	var got decodeTarget

	if err := s.decodeJSON(httptest.NewRecorder(), newBodyRequest(body, "application/json"), &got, false); err != nil {
		t.Errorf("decodeJSON: got %v, want nil", err)
	}
}

func TestDecodeFormValid(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		contentType string
	}{
		{"form", "grant_type=refresh_token&refresh_token=abc%2B1", "application/x-www-form-urlencoded"},
		{"form with charset", "grant_type=refresh_token&refresh_token=abc%2B1", "application/x-www-form-urlencoded; charset=utf-8"},
		{"no content type", "grant_type=refresh_token&refresh_token=abc%2B1", ""},
		{"json object", `{"grant_type":"refresh_token","refresh_token":"abc+1"}`, "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStatelessServer(t)
			vals, err := s.decodeForm(httptest.NewRecorder(), newBodyRequest(tt.body, tt.contentType))
			if err != nil {
				t.Fatalf("decodeForm: got %v, want nil", err)
			}
			want := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"abc+1"}}
			if got := vals.Encode(); got != want.Encode() {
				t.Errorf("values: got %s, want %s", got, want.Encode())
			}
		})
	}
}

func TestDecodeFormRejects(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		contentType string
		wantStatus  int
		wantCode    Code
		wantDetail  string
	}{
		{"repeated parameter", "grant_type=refresh_token&grant_type=password", "application/x-www-form-urlencoded",
			http.StatusBadRequest, CodeInvalidRequest, `parameter "grant_type" is repeated`},
		{"malformed escape", "grant_type=%zz", "application/x-www-form-urlencoded",
			http.StatusBadRequest, CodeInvalidRequest, "malformed form body"},
		{"json number field", `{"grant_type":1}`, "application/json",
			http.StatusBadRequest, CodeInvalidRequest, "JSON object of string fields"},
		{"json array", `["grant_type"]`, "application/json",
			http.StatusBadRequest, CodeInvalidRequest, "JSON object of string fields"},
		{"invalid UTF-8", "grant_type=\xff", "application/x-www-form-urlencoded",
			http.StatusBadRequest, CodeInvalidRequest, "UTF-8"},
		{"oversize", "refresh_token=" + strings.Repeat("a", testMaxBodyBytes), "application/x-www-form-urlencoded",
			http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "exceeds"},
		{"text plain", "grant_type=refresh_token", "text/plain",
			http.StatusUnsupportedMediaType, CodeInvalidRequest, `"text/plain"`},
		{"multipart", "grant_type=refresh_token", "multipart/form-data; boundary=x",
			http.StatusUnsupportedMediaType, CodeInvalidRequest, `"multipart/form-data"`},
		{"unparsable content type", "grant_type=refresh_token", "application/x-www-form-urlencoded; =",
			http.StatusUnsupportedMediaType, CodeInvalidRequest, "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStatelessServer(t)
			_, err := s.decodeForm(httptest.NewRecorder(), newBodyRequest(tt.body, tt.contentType))

			e := asAPIError(t, err)
			if e.Code != tt.wantCode {
				t.Errorf("code: got %q, want %q", e.Code, tt.wantCode)
			}
			if got := e.status(); got != tt.wantStatus {
				t.Errorf("status: got %d, want %d", got, tt.wantStatus)
			}
			if !strings.Contains(e.Detail, tt.wantDetail) {
				t.Errorf("detail: got %q, want it to contain %q", e.Detail, tt.wantDetail)
			}
		})
	}
}
