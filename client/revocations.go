package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// revocationSet is a copy of the cluster's deny set: the sessions whose
// access tokens are revoked, each until its last token expires.
type revocationSet struct {
	url  string
	http *http.Client

	mu       sync.RWMutex
	sessions map[string]time.Time
	cursor   string
	synced   time.Time // when the last sync succeeded
}

type revocationsPage struct {
	Cursor      string `json:"cursor"`
	Full        bool   `json:"full"`
	Revocations []struct {
		SessionID string    `json:"session_id"`
		Until     time.Time `json:"until"`
	} `json:"revocations"`
}

// sync requests the changes since the last sync, or the whole set the first
// time and whenever the responding node does not know the cursor.
func (r *revocationSet) sync(ctx context.Context) error {
	r.mu.RLock()
	target := r.url
	if r.cursor != "" {
		target += "?since=" + url.QueryEscape(r.cursor)
	}
	r.mu.RUnlock()

	var page revocationsPage
	if err := getJSON(ctx, r.http, target, &page); err != nil {
		return fmt.Errorf("sync revocations: %w", err)
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if page.Full {
		r.sessions = make(map[string]time.Time, len(page.Revocations))
	}
	for _, e := range page.Revocations {
		if until, ok := r.sessions[e.SessionID]; !ok || e.Until.After(until) {
			r.sessions[e.SessionID] = e.Until
		}
	}
	for id, until := range r.sessions {
		if !until.After(now) {
			delete(r.sessions, id)
		}
	}
	r.cursor, r.synced = page.Cursor, now
	return nil
}

// revoked reports whether the session's tokens are revoked, and how long
// ago the set was last brought up to date.
func (r *revocationSet) revoked(session string) (bool, time.Duration) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.sessions[session]
	return ok, time.Since(r.synced)
}

// run syncs every interval until ctx ends. A failed sync is retried at the
// next tick; onError receives it.
func (r *revocationSet) run(ctx context.Context, interval time.Duration, onError func(error)) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			syncCtx, cancel := context.WithTimeout(ctx, max(interval, 2*time.Second))
			if err := r.sync(syncCtx); err != nil && ctx.Err() == nil {
				onError(err)
			}
			cancel()
		}
	}
}
