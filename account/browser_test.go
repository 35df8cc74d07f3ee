package account_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/testnode"
)

// The browser test drives Debian's Chromium through chromedriver's WebDriver
// HTTP interface against a real rotor node. It is skipped when either is
// missing, unless ROTOR_REQUIRE_BROWSER=1 (as .ci/run sets it).

func TestMain(m *testing.M) { os.Exit(testnode.Run(m)) }

const (
	chromiumPath     = "/usr/bin/chromium"
	chromedriverPath = "/usr/bin/chromedriver"
	password         = "account page password"
)

func requireBrowser(t *testing.T) {
	t.Helper()
	for _, p := range []string{chromiumPath, chromedriverPath} {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("ROTOR_REQUIRE_BROWSER") == "1" {
				t.Fatalf("%s is missing: install chromium and chromium-driver", p)
			}
			t.Skipf("%s is missing; install chromium and chromium-driver to run the browser test", p)
		}
	}
}

// startChromedriver runs chromedriver on port until the test ends and
// returns its output.
func startChromedriver(t *testing.T, port string) *testnode.Buffer {
	t.Helper()
	out := &testnode.Buffer{}
	cmd := exec.Command(chromedriverPath, "--port="+port)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromedriver: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return out
}

// startNode runs a single rotor node and returns its base URL.
func startNode(t *testing.T) string {
	t.Helper()
	return testnode.Start(t, nil).URL
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool, logs ...fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			for _, l := range logs {
				t.Logf("log:\n%s", l.String())
			}
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// post sends a JSON request to the node and decodes the JSON response.
func post(t *testing.T, url string, body, out any) int {
	t.Helper()
	data, _ := json.Marshal(body)
	r, err := http.Post(url, "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if out != nil {
		json.NewDecoder(r.Body).Decode(out)
	}
	return r.StatusCode
}

// webDriver is a session of chromedriver's WebDriver protocol.
type webDriver struct {
	t       *testing.T
	base    string // chromedriver's URL
	session string
}

func (d *webDriver) call(method, path string, body any) json.RawMessage {
	d.t.Helper()
	var reader io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		reader = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, d.base+path, reader)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatalf("webdriver %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out struct {
		Value json.RawMessage `json:"value"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil || resp.StatusCode != http.StatusOK {
		d.t.Fatalf("webdriver %s %s: HTTP %d %s", method, path, resp.StatusCode, raw)
	}
	return out.Value
}

func startBrowser(t *testing.T) *webDriver {
	t.Helper()
	port := strings.TrimPrefix(testnode.FreeAddr(t), "127.0.0.1:")
	logs := startChromedriver(t, port)
	d := &webDriver{t: t, base: "http://127.0.0.1:" + port}
	waitFor(t, 20*time.Second, "chromedriver", func() bool {
		r, err := http.Get(d.base + "/status")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusOK
	}, logs)

	// The flags keep Chromium from reaching out to any other host.
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"goog:chromeOptions": map[string]any{
			"binary": chromiumPath,
			"args": []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
				"--disable-background-networking", "--disable-component-update", "--disable-sync",
				"--disable-dev-shm-usage", "--window-size=1100,700", "--user-data-dir=" + t.TempDir()},
		},
	}}}
	var created struct {
		SessionID string `json:"sessionId"`
	}
	if err := json.Unmarshal(d.call(http.MethodPost, "/session", caps), &created); err != nil || created.SessionID == "" {
		t.Fatalf("webdriver session: %v", err)
	}
	d.session = "/session/" + created.SessionID
	t.Cleanup(func() { d.call(http.MethodDelete, d.session, nil) })
	return d
}

func (d *webDriver) open(url string) {
	d.call(http.MethodPost, d.session+"/url", map[string]string{"url": url})
}

// script runs JavaScript in the page and decodes its return value into out.
func (d *webDriver) script(js string, out any, args ...any) {
	d.t.Helper()
	if args == nil {
		args = []any{}
	}
	raw := d.call(http.MethodPost, d.session+"/execute/sync", map[string]any{"script": js, "args": args})
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			d.t.Fatalf("script result %s: %v", raw, err)
		}
	}
}

// find returns the WebDriver element id of the first match of a CSS selector.
func (d *webDriver) find(css string) string {
	d.t.Helper()
	raw := d.call(http.MethodPost, d.session+"/element", map[string]string{"using": "css selector", "value": css})
	var el map[string]string
	json.Unmarshal(raw, &el)
	for _, id := range el {
		return id
	}
	d.t.Fatalf("no element matches %q", css)
	return ""
}

func (d *webDriver) click(css string) {
	d.call(http.MethodPost, d.session+"/element/"+d.find(css)+"/click", map[string]any{})
}

func (d *webDriver) typeInto(css, text string) {
	d.call(http.MethodPost, d.session+"/element/"+d.find(css)+"/value", map[string]string{"text": text})
}

// visible reports whether the page shows an element matching css.
func (d *webDriver) visible(css string) bool {
	var visible bool
	d.script(`const e = document.querySelector(arguments[0]); return !!e && !e.closest("[hidden]");`, &visible, css)
	return visible
}

func (d *webDriver) rows() []string {
	var ids []string
	d.script(`return [...document.querySelectorAll("#sessions tbody tr")].map(r => r.dataset.sessionId);`, &ids)
	return ids
}

func TestAccountPageInBrowser(t *testing.T) {
	requireBrowser(t)
	base := startNode(t)
	if got := post(t, base+"/v1/users", map[string]string{"username": "maya", "password": password}, nil); got != http.StatusCreated {
		t.Fatalf("sign up: HTTP %d", got)
	}
	d := startBrowser(t)

	// Log in on the page.
	d.open(base + "/account/")
	waitFor(t, 10*time.Second, "the login form", func() bool { return d.visible("#login-form") })
	d.typeInto("#username", "maya")
	d.typeInto("#password", password)
	d.click("#login")
	waitFor(t, 10*time.Second, "the sessions table", func() bool { return d.visible("#sessions") && len(d.rows()) == 1 })
	var current bool
	d.script(`return document.querySelector("#sessions tbody tr").classList.contains("current");`, &current)
	if !current {
		t.Error("the page's own session is not marked as the current one")
	}

	// A second session from another "device" shows up without a reload.
	var phone struct {
		SessionID    string `json:"session_id"`
		RefreshToken string `json:"refresh_token"`
	}
	if got := post(t, base+"/v1/login", map[string]string{"username": "maya", "password": password, "device_name": "Maya's phone"}, &phone); got != http.StatusOK {
		t.Fatalf("second login: HTTP %d", got)
	}
	waitFor(t, 10*time.Second, "the phone's session on the page", func() bool { return len(d.rows()) == 2 })
	if path := os.Getenv("ROTOR_ACCOUNT_SCREENSHOT"); path != "" {
		png, err := base64.StdEncoding.DecodeString(strings.Trim(string(d.call(http.MethodGet, d.session+"/screenshot", nil)), `"`))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// End it from the page: it disappears, and its refresh token is dead.
	d.click(fmt.Sprintf(`button.end[data-session-id=%q]`, phone.SessionID))
	waitFor(t, 10*time.Second, "the phone's session to disappear", func() bool {
		rows := d.rows()
		return len(rows) == 1 && rows[0] != phone.SessionID
	})
	if got := post(t, base+"/v1/refresh", map[string]string{"refresh_token": phone.RefreshToken}, nil); got != http.StatusUnauthorized {
		t.Errorf("refresh of the ended session: HTTP %d, want 401", got)
	}

	// The refresh token is nowhere JavaScript can read it.
	var stores []string
	d.script(`return [document.cookie, JSON.stringify(Object.entries(localStorage)), JSON.stringify(Object.entries(sessionStorage))];`, &stores)
	for i, where := range []string{"document.cookie", "localStorage", "sessionStorage"} {
		if strings.Contains(stores[i], "rtr1_") || strings.Contains(stores[i], "rotor_refresh") {
			t.Errorf("%s exposes the refresh token: %q", where, stores[i])
		}
	}

	// A reload resumes the session from the HttpOnly cookie alone.
	d.open(base + "/account/")
	waitFor(t, 10*time.Second, "the session after a reload", func() bool { return d.visible("#sessions") && len(d.rows()) == 1 })

	// Ending every session returns the page to the login form.
	d.click("#end-all")
	waitFor(t, 10*time.Second, "the login form after ending every session", func() bool { return d.visible("#login-form") })
}
