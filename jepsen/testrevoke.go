package main

import (
	"context"
	"math/rand/v2"
	"net/http"
	"time"
)

// admin is the harness's admin account, logged in again when its access
// token is old.
type admin struct {
	w        *workload
	access   string
	loggedIn time.Time
}

// adminRenewAfter is the age at which the admin logs in again, well inside
// the node's default access-token lifetime of five minutes.
const adminRenewAfter = 2 * time.Minute

// token returns a current admin access token, logging in when needed.
func (a *admin) token(ctx context.Context) (string, bool) {
	if a.access != "" && time.Since(a.loggedIn) < adminRenewAfter {
		return a.access, true
	}
	creds := credentials{Username: adminUsername, Password: a.w.tb.admin}
	for attempt := 0; attempt < 10 && ctx.Err() == nil; attempt++ {
		r, err := a.w.client.login(ctx, a.w.tb.lbURL, creds)
		if err == nil && r.status == http.StatusOK {
			if t, err := parseTokens(r.body); err == nil {
				a.access, a.loggedIn = t.AccessToken, time.Now()
				return a.access, true
			}
		}
		sleep(ctx, 500*time.Millisecond)
	}
	return "", false
}

// runRevoker ends sessions the way users and admins do: logouts, removals
// of another device, user-wide revocations and disabling a user for a
// moment. Every call goes through the load balancer.
func (w *workload) runRevoker(ctx context.Context) {
	proc := w.newProcess()
	adm := &admin{w: w}
	for ctx.Err() == nil {
		sleep(ctx, time.Duration(2000+rand.IntN(1000))*time.Millisecond)
		switch n := rand.IntN(10); {
		case n < 3:
			w.logoutOne(proc)
		case n < 6:
			w.removeDevice(proc)
		case n < 8:
			w.revokeUser(ctx, proc, adm)
		default:
			w.disableUser(ctx, proc, adm)
		}
	}
}

// pickHeld returns a random held session, and another one of the same user
// when there is one.
func (w *workload) pickHeld() (target, other heldSession, ok, hasOther bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.heldSessions) == 0 {
		return
	}
	i := rand.IntN(len(w.heldSessions))
	for _, h := range w.heldSessions {
		if i == 0 {
			target, ok = *h, true
			break
		}
		i--
	}
	for _, h := range w.heldSessions {
		if h.user == target.user && h.session != target.session {
			return target, *h, true, true
		}
	}
	return target, other, true, false
}

// logoutOne logs one held session out with its own access token.
func (w *workload) logoutOne(proc int) {
	h, _, ok, _ := w.pickHeld()
	if !ok {
		return
	}
	w.call(Event{Process: proc, F: opLogout, Node: "lb", Session: h.session, User: w.users[h.user].id, Purposeful: true},
		func(ctx context.Context) (apiResponse, error) { return w.client.logout(ctx, w.tb.lbURL, h.access) }, nil)
}

// removeDevice ends one session from another session of the same user, as
// the "your devices" page does.
func (w *workload) removeDevice(proc int) {
	h, other, ok, hasOther := w.pickHeld()
	if !ok || !hasOther {
		return
	}
	w.call(Event{Process: proc, F: opLogout, Node: "lb", Session: h.session, User: w.users[h.user].id, Purposeful: true},
		func(ctx context.Context) (apiResponse, error) {
			return w.client.send(ctx, http.MethodDelete, w.tb.lbURL+"/v1/sessions/"+h.session, other.access, nil)
		}, nil)
}

// revokeUser ends every session of a random user.
func (w *workload) revokeUser(ctx context.Context, proc int, adm *admin) {
	tok, ok := adm.token(ctx)
	if !ok {
		return
	}
	u := w.users[rand.IntN(len(w.users))]
	w.call(Event{Process: proc, F: opRevokeUser, Node: "lb", User: u.id, Purposeful: true},
		func(ctx context.Context) (apiResponse, error) {
			return w.client.send(ctx, http.MethodDelete, w.tb.lbURL+"/v1/admin/users/"+u.id+"/sessions", tok, nil)
		}, nil)
}

// disableUser disables a random user, which ends all its sessions, and
// enables it again a moment later, retrying until that succeeds.
func (w *workload) disableUser(ctx context.Context, proc int, adm *admin) {
	tok, ok := adm.token(ctx)
	if !ok {
		return
	}
	u := w.users[rand.IntN(len(w.users))]
	set := func(f string, disabled bool) string {
		typ, _, _ := w.call(Event{Process: proc, F: f, Node: "lb", User: u.id, Purposeful: true},
			func(ctx context.Context) (apiResponse, error) {
				return w.client.send(ctx, http.MethodPut, w.tb.lbURL+"/v1/admin/users/"+u.id+"/disabled", tok,
					map[string]bool{"disabled": disabled})
			}, nil)
		return typ
	}
	set(opRevokeUser, true)
	sleep(ctx, 2*time.Second)
	// The enable must succeed even after the run ends, or the user stays
	// locked out for the final phase. Sixty attempts bound the retries.
	for attempt := 0; attempt < 60; attempt++ {
		if set(opEnable, false) == typeOK {
			return
		}
		time.Sleep(500 * time.Millisecond)
		if tok, ok = adm.token(context.Background()); !ok {
			return
		}
	}
}
