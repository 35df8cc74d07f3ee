package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/rotorhq/rotor/fsm"
)

// revocationView is one deny entry as GET /v1/revocations shows it.
type revocationView struct {
	SessionID string    `json:"session_id"`
	Until     timestamp `json:"until"`
}

type revocationsResponse struct {
	Cursor      string           `json:"cursor"`
	Full        bool             `json:"full"`
	Revocations []revocationView `json:"revocations"`
}

// handleRevocations serves this node's deny set to resource servers that
// validate access tokens themselves: the whole set, or with ?since= the
// entries added after an earlier response's cursor. It reads the node's
// own state, like validation does.
func (s *Server) handleRevocations(w http.ResponseWriter, r *http.Request) error {
	var since fsm.Cursor
	if raw := r.URL.Query().Get("since"); raw != "" {
		c, err := parseCursor(raw)
		if err != nil {
			return errorf(CodeInvalidRequest, "since: %v", err)
		}
		since = c
	}
	entries, next, full := s.deps.State.Revocations().Since(since)
	resp := revocationsResponse{Cursor: formatCursor(next), Full: full, Revocations: make([]revocationView, 0, len(entries))}
	now := s.cfg.Now()
	for _, e := range entries {
		if e.Until.After(now) {
			resp.Revocations = append(resp.Revocations, revocationView{SessionID: e.Session.String(), Until: timestamp(e.Until)})
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func formatCursor(c fsm.Cursor) string {
	return c.Incarnation.String() + "." + strconv.FormatUint(c.Seq, 10)
}

func parseCursor(raw string) (fsm.Cursor, error) {
	id, seq, ok := strings.Cut(raw, ".")
	if !ok {
		return fsm.Cursor{}, fmt.Errorf("invalid cursor %q: use the cursor of an earlier response", raw)
	}
	incarnation, err := fsm.ParseID(id)
	if err != nil {
		return fsm.Cursor{}, fmt.Errorf("invalid cursor %q: use the cursor of an earlier response", raw)
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return fsm.Cursor{}, fmt.Errorf("invalid cursor %q: use the cursor of an earlier response", raw)
	}
	return fsm.Cursor{Incarnation: incarnation, Seq: n}, nil
}
