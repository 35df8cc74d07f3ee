package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// readBody reads the whole request body, at most s.cfg.MaxBodyBytes, and
// rejects bodies that are not UTF-8. Go's JSON decoder would silently turn
// invalid bytes into U+FFFD, so the check comes first.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, errorf(CodePayloadTooLarge, "request body exceeds %d bytes", s.cfg.MaxBodyBytes)
		}
		return nil, errorf(CodeInvalidRequest, "could not read request body")
	}
	if !utf8.Valid(body) {
		return nil, errorf(CodeInvalidRequest, "request body is not valid UTF-8")
	}
	return body, nil
}

// mediaType returns the request's media type, lower case, without parameters.
func mediaType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "invalid"
	}
	return mt
}

// decodeJSON reads a JSON object into v. Unknown fields, trailing data and
// type mismatches are client errors that name the field. An empty body
// decodes as {} when allowEmpty is set.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any, allowEmpty bool) error {
	if mt := mediaType(r); mt != "" && mt != "application/json" {
		return &Error{Code: CodeInvalidRequest, Status: http.StatusUnsupportedMediaType,
			Detail: fmt.Sprintf("content type %q is not supported; send application/json", mt)}
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	return parseJSON(body, v, allowEmpty)
}

// parseJSON decodes a body that decodeJSON or a follower's precheck read.
func parseJSON(body []byte, v any, allowEmpty bool) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		if allowEmpty {
			return nil
		}
		return errorf(CodeInvalidRequest, "request body is empty; send a JSON object")
	}
	if trimmed[0] != '{' {
		return errorf(CodeInvalidRequest, "request body must be a JSON object")
	}
	return unmarshalStrict(body, v)
}

func unmarshalStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return errorf(CodeInvalidRequest, "request body has data after the JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(CodeInvalidRequest, "request body has data after the JSON object")
	}
	return nil
}

// jsonError turns a decoding error into a client error that names where the
// body is malformed.
func jsonError(err error) *Error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return errorf(CodeInvalidRequest, "malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return errorf(CodeInvalidRequest, "field %q must be %s, got %s", typ.Field, typ.Type, typ.Value)
		}
		return errorf(CodeInvalidRequest, "request body must be a JSON object, got %s", typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return errorf(CodeInvalidRequest, "malformed JSON: unexpected end of body")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return errorf(CodeInvalidRequest, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return errorf(CodeInvalidRequest, "malformed JSON")
}

// decodeForm reads an application/x-www-form-urlencoded body, or a JSON object
// of string fields, as the OAuth endpoints accept both.
func (s *Server) decodeForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if err := checkFormType(r); err != nil {
		return nil, err
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return nil, err
	}
	return parseForm(r, body)
}

func checkFormType(r *http.Request) error {
	switch mt := mediaType(r); mt {
	case "application/x-www-form-urlencoded", "", "application/json":
		return nil
	default:
		return &Error{Code: CodeInvalidRequest, Status: http.StatusUnsupportedMediaType,
			Detail: fmt.Sprintf("content type %q is not supported; send application/x-www-form-urlencoded", mt)}
	}
}

// parseForm parses a body that decodeForm or a follower's precheck read.
func parseForm(r *http.Request, body []byte) (url.Values, error) {
	if err := checkFormType(r); err != nil {
		return nil, err
	}
	if mediaType(r) == "application/json" {
		var m map[string]string
		if err := json.Unmarshal(body, &m); err != nil || m == nil {
			return nil, errorf(CodeInvalidRequest, "request body must be a JSON object of string fields")
		}
		vals := url.Values{}
		for k, v := range m {
			vals.Set(k, v)
		}
		return vals, nil
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errorf(CodeInvalidRequest, "malformed form body")
	}
	for k, v := range vals {
		if len(v) > 1 {
			return nil, errorf(CodeInvalidRequest, "parameter %q is repeated", k)
		}
	}
	return vals, nil
}
