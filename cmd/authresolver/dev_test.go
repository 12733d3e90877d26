package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authresolver/authresolver/internal/syncbuf"
)

// TestDevPrintsWorkingCredentials runs `authresolver dev` and follows what it
// printed: the token and the cookie resolve, the role check forbids, the
// printed revoke call revokes.
func TestDevPrintsWorkingCredentials(t *testing.T) {
	text := startDev(t)
	curl := regexp.MustCompile(`curl -i '?(http://[^ ']+)'? (?:-H '([^:]+): ([^']+)')?`)
	var calls [][]string
	for _, line := range strings.Split(text, "\n") {
		if m := curl.FindStringSubmatch(line); m != nil && !strings.Contains(line, "-X DELETE") {
			calls = append(calls, m)
		}
	}
	wantCodes := []int{200, 200, 403, 401, 401}
	if len(calls) != len(wantCodes) {
		t.Fatalf("found %d curl lines, want %d:\n%s", len(calls), len(wantCodes), text)
	}
	revoke := regexp.MustCompile(`curl -i -X DELETE (\S+) -H 'Authorization: ([^']+)'`).FindStringSubmatch(text)
	if revoke == nil {
		t.Fatalf("no revoke line:\n%s", text)
	}
	for i, c := range calls {
		if i == 4 { // the line after the printed revoke
			req := newRequest(t, "DELETE", revoke[1], map[string]string{"Authorization": revoke[2]})
			if code := do(t, req); code != 204 {
				t.Fatalf("printed revoke = %d, want 204", code)
			}
		}
		hdr := map[string]string{}
		if c[2] != "" {
			hdr[c[2]] = c[3]
		}
		if code, _, _ := get(t, c[1], hdr); code != wantCodes[i] {
			t.Errorf("printed curl %d (%s) = %d, want %d", i, c[1], code, wantCodes[i])
		}
	}
}

// startDev runs `authresolver dev` on port 0 until the test ends and
// returns what it printed.
func startDev(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncbuf.Buffer{}
	done := make(chan int, 1)
	env := map[string]string{"AUTHRESOLVER_LISTEN_ADDR": "127.0.0.1:0", "AUTHRESOLVER_ADMIN_ADDR": "127.0.0.1:0", "AUTHRESOLVER_DEMO_ADDR": "127.0.0.1:0", "AUTHRESOLVER_LOG_FORMAT": "json"}
	go func() { done <- run(ctx, []string{"dev"}, env, out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("dev exited %d", code)
		}
	})
	waitFor(t, 10*time.Second, "dev output", func() bool { return strings.Contains(out.String(), "Open in a browser") })
	return out.String()
}

// TestDevBrowserDemo follows the demo loop `authresolver dev` prints, as a
// browser would (the e2e suite does it in Chromium): the app sends a
// navigation to the login page, signing in sets a session cookie and comes
// back, the API never redirects, signing out revokes the session.
func TestDevBrowserDemo(t *testing.T) {
	text := startDev(t)
	m := regexp.MustCompile(`Open in a browser:\s+(http://\S+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no demo URL:\n%s", text)
	}
	app := m[1]
	noFollow := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// send answers the status, headers and body of one request, sent as a
	// browser navigation (Accept: text/html) unless hdr says otherwise.
	send := func(method, url, body string, hdr map[string]string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "text/html")
		if body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}

	code, hdr, _ := send("GET", app, "", nil)
	wantLogin := strings.TrimSuffix(app, "/") + "/login?redirect_uri=" + url.QueryEscape(app)
	if code != http.StatusFound || hdr.Get("Location") != wantLogin {
		t.Fatalf("app without a session: %d Location %q, want 302 %q", code, hdr.Get("Location"), wantLogin)
	}
	if code, _, body := send("GET", wantLogin, "", nil); code != 200 || !strings.Contains(body, "Demo only") {
		t.Fatalf("login page: %d %s", code, body)
	}
	if code, _, _ := send("GET", strings.TrimSuffix(app, "/")+"/login?redirect_uri="+url.QueryEscape("http://evil.example/"), "", nil); code != http.StatusBadRequest {
		t.Errorf("login page for a foreign redirect_uri: %d, want 400", code)
	}
	if code, _, _ := send("POST", strings.TrimSuffix(app, "/")+"/login", "redirect_uri="+url.QueryEscape(app), map[string]string{"Origin": "http://evil.example"}); code != http.StatusForbidden {
		t.Errorf("cross-site sign-in: %d, want 403", code)
	}
	code, hdr, _ = send("POST", strings.TrimSuffix(app, "/")+"/login", "redirect_uri="+url.QueryEscape(app), nil)
	if code != http.StatusSeeOther || hdr.Get("Location") != app {
		t.Fatalf("sign in: %d Location %q, want 303 %q", code, hdr.Get("Location"), app)
	}
	cookies := (&http.Response{Header: hdr}).Cookies()
	if len(cookies) != 1 || cookies[0].Name != "session" || !cookies[0].HttpOnly {
		t.Fatalf("sign in set %v, want one HttpOnly session cookie", cookies)
	}
	cookie := map[string]string{"Cookie": "session=" + cookies[0].Value}
	if code, _, body := send("GET", app, "", cookie); code != 200 || !strings.Contains(body, `<span id="user">dev-user</span>`) {
		t.Fatalf("app with the session: %d %s", code, body)
	}
	if code, _, body := send("GET", app+"api/me", "", map[string]string{"Accept": "application/json"}); code != 401 || !strings.Contains(body, "missing_credential") {
		t.Errorf("API without a session: %d %s, want 401 JSON", code, body)
	}
	if code, _, _ := send("POST", app+"logout", "", cookie); code != http.StatusSeeOther {
		t.Fatalf("sign out: %d, want 303", code)
	}
	if code, hdr, _ := send("GET", app, "", cookie); code != http.StatusFound || hdr.Get("Location") != wantLogin {
		t.Errorf("app with the revoked session: %d Location %q, want 302 to the login page", code, hdr.Get("Location"))
	}
}
