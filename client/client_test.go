package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/testnode"
)

func TestMain(m *testing.M) { os.Exit(testnode.Run(m)) }

const (
	adminName     = "root-admin"
	adminPassword = "admin password for tests"
	userPassword  = "user password for tests"
)

// startNode runs a real node with an admin account until the test ends,
// and returns once the admin can log in.
func startNode(t *testing.T) *testnode.Node {
	t.Helper()
	n := testnode.Start(t, []string{"ROTOR_ADMIN_PASSWORD=" + adminPassword}, "--admin-username", adminName)
	api := &API{BaseURL: n.URL}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := api.Login(context.Background(), adminName, adminPassword, "probe"); err == nil {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("the admin could not log in within 20s; log:\n%s", n.Logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// adminCall sends an admin request and fails the test unless it succeeds.
func adminCall(t *testing.T, api *API, access, method, path string, body any) {
	t.Helper()
	if err := api.do(context.Background(), method, path, access, body, nil); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
}

// get sends GET path to the protected service with the token and returns
// the status.
func get(t *testing.T, service, path, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, service+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestMiddlewareAgainstRealNode(t *testing.T) {
	node := startNode(t)
	ctx := context.Background()
	api := &API{BaseURL: node.URL}

	admin, err := api.Login(ctx, adminName, adminPassword, "test")
	if err != nil {
		t.Fatal(err)
	}
	userID, err := api.SignUp(ctx, "nina", userPassword)
	if err != nil {
		t.Fatal(err)
	}
	adminCall(t, api, admin.AccessToken, http.MethodPut, "/v1/admin/roles/editor", map[string][]string{"permissions": {"posts:write"}})
	adminCall(t, api, admin.AccessToken, http.MethodPut, "/v1/admin/users/"+userID+"/roles", map[string][]string{"roles": {"editor"}})
	nina, err := api.Login(ctx, "nina", userPassword, "laptop")
	if err != nil {
		t.Fatal(err)
	}

	v, err := New(ctx, Config{BaseURL: node.URL, Issuer: node.URL, Audience: "rotor", RevocationPoll: 100 * time.Millisecond, MaxStaleness: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	mux := http.NewServeMux()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, found := ClaimsFrom(r.Context()); !found || c.Subject == "" {
			t.Errorf("%s: no claims in the request context", r.URL.Path)
		}
	})
	mux.Handle("/read", v.Middleware()(ok))
	mux.Handle("/write", v.Middleware(AllPermissions("posts:write"))(ok))
	mux.Handle("/admin", v.Middleware(AnyRole("admin"))(ok))
	service := httptest.NewServer(mux)
	defer service.Close()

	checks := []struct {
		path, token string
		want        int
	}{
		{"/read", nina.AccessToken, http.StatusOK},
		{"/write", nina.AccessToken, http.StatusOK},
		{"/admin", nina.AccessToken, http.StatusForbidden},
		{"/admin", admin.AccessToken, http.StatusOK},
		{"/write", admin.AccessToken, http.StatusForbidden},
		{"/read", "", http.StatusUnauthorized},
		{"/read", "not-a-token", http.StatusUnauthorized},
		{"/read", nina.AccessToken[:len(nina.AccessToken)-4] + "AAAA", http.StatusUnauthorized},
	}
	for _, c := range checks {
		if got := get(t, service.URL, c.path, c.token); got != c.want {
			t.Errorf("GET %s: got %d, want %d", c.path, got, c.want)
		}
	}

	// A signing-key rotation rejects no live token: the old one keeps
	// working and the new key is found in the key set.
	adminCall(t, api, admin.AccessToken, http.MethodPost, "/v1/admin/signing-keys/rotate", nil)
	rotated, err := api.Refresh(ctx, nina.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	for name, token := range map[string]string{"old key": nina.AccessToken, "new key": rotated.AccessToken} {
		if got := get(t, service.URL, "/write", token); got != http.StatusOK {
			t.Errorf("GET /write with a token of the %s after rotation: got %d, want 200", name, got)
		}
	}

	// Logout: the token stays valid by its signature, but the middleware
	// rejects it once the revocation set reaches the validator.
	if err := api.Logout(ctx, nina.AccessToken); err != nil {
		t.Fatal(err)
	}
	loggedOut := time.Now()
	for get(t, service.URL, "/read", nina.AccessToken) != http.StatusUnauthorized {
		if time.Since(loggedOut) > 3*time.Second {
			t.Fatal("the token of a logged-out session is still accepted 3s later")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := v.Validate(ctx, nina.AccessToken); !errors.Is(err, ErrRevoked) {
		t.Errorf("Validate after logout: got %v, want ErrRevoked", err)
	}
	t.Logf("revocation reached the middleware %s after the logout", time.Since(loggedOut).Round(time.Millisecond))

	// Without updates for longer than MaxStaleness, nothing is trusted.
	node.Stop()
	time.Sleep(1500 * time.Millisecond)
	if _, err := v.Validate(ctx, admin.AccessToken); !errors.Is(err, ErrStale) {
		t.Errorf("Validate with a stale revocation set: got %v, want ErrStale", err)
	}
	if got := get(t, service.URL, "/read", admin.AccessToken); got != http.StatusServiceUnavailable {
		t.Errorf("GET /read with a stale revocation set: got %d, want 503", got)
	}
}

func TestAPIErrors(t *testing.T) {
	node := startNode(t)
	ctx := context.Background()
	api := &API{BaseURL: node.URL}
	if _, err := api.SignUp(ctx, "oscar", userPassword); err != nil {
		t.Fatal(err)
	}
	first, err := api.Login(ctx, "oscar", userPassword, "phone")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.Refresh(ctx, first.RefreshToken); err != nil {
		t.Fatal(err)
	}
	_, err = api.Login(ctx, "oscar", "wrong password", "phone")
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized || apiErr.Code != "invalid_credentials" || apiErr.Temporary() {
		t.Errorf("wrong password: got %v, want a 401 invalid_credentials that is not temporary", err)
	}
	acc, err := api.Me(ctx, first.AccessToken)
	if err != nil || acc.Username != "oscar" || acc.SessionID != first.SessionID {
		t.Errorf("Me: got %+v, %v", acc, err)
	}
}
