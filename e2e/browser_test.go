package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/authresolver/authresolver/internal/syncbuf"
)

// browserTimeout bounds one scenario in the browser; a step takes far less.
const (
	browserTimeout = 60 * time.Second
	stepTimeout    = 15 * time.Second
)

// browser is a headless Chromium (Debian's chromium) driven over the
// DevTools protocol, with a fresh profile. Every step is screenshotted; when
// the test fails the screenshots are written to disk and their paths logged.
type browser struct {
	tb    testing.TB
	ctx   context.Context
	shots []shot
}

type shot struct {
	name string
	png  []byte
}

// chromium is the one headless Chromium of the test run, started by the
// first browser test with a fresh --user-data-dir and stopped by TestMain.
// Each test gets its own browser context in it: its own cookies and
// storage, as a fresh profile would have, without paying for a start-up.
var chromium struct {
	once sync.Once
	ctx  context.Context // the browser's chromedp context
	stop func()
	out  *syncbuf.Buffer
	err  error
}

func startChromium(bin string) {
	dir, err := os.MkdirTemp("", "authresolver-e2e-chromium-")
	if err != nil {
		chromium.err = err
		return
	}
	chromium.out = &syncbuf.Buffer{}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(1024, 768),
		chromedp.CombinedOutput(chromium.out),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	chromium.ctx = ctx
	chromium.stop = func() {
		cancel()
		cancelAlloc()
		_ = os.RemoveAll(dir)
	}
	// The first Do binds the browser's life to its context: no timeout here.
	if err := chromedp.Do(ctx); err != nil {
		chromium.err = fmt.Errorf("start chromium: %w\n%s", err, chromium.out.String())
	}
}

// stopChromium ends the shared browser, if a test started it.
func stopChromium() {
	if chromium.stop != nil {
		chromium.stop()
	}
}

// newBrowser returns a fresh browser context (a new profile, in effect) of
// the shared Chromium, closed when the test ends.
func newBrowser(tb testing.TB) *browser {
	tb.Helper()
	bin := lookPath(tb, "chromium", "chromium")
	chromium.once.Do(func() { startChromium(bin) })
	if chromium.err != nil {
		tb.Fatal(chromium.err)
	}
	ctx, cancelCtx := chromedp.NewContext(chromium.ctx, chromedp.WithNewBrowserContext())
	tb.Cleanup(cancelCtx)
	// The first Do binds the tab's life to its context: no timeout here.
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("open a browser context: %v", err)
	}
	tctx, cancelTimeout := context.WithTimeout(ctx, browserTimeout)
	b := &browser{tb: tb, ctx: tctx}
	tb.Cleanup(func() {
		if tb.Failed() {
			b.saveShots()
			tb.Logf("--- chromium output ---\n%s", chromium.out.String())
		}
		cancelTimeout()
	})
	return b
}

// step runs actions as one named step and screenshots the page after it.
func (b *browser) step(name string, actions ...chromedp.Action[chromedp.Void]) {
	b.tb.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	err := chromedp.Do(ctx, actions...)
	cancel()
	if err == nil {
		b.screenshot(name)
	}
	b.fail(name, err)
}

func (b *browser) screenshot(name string) {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	png, _ := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	cancel()
	b.shots = append(b.shots, shot{name, png})
}

// fail fails the test if a step failed, with a screenshot, the page's URL
// and its text.
func (b *browser) fail(name string, err error) {
	b.tb.Helper()
	if err != nil {
		b.screenshot(name + " failed")
		infoCtx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		loc, _ := chromedp.Run(infoCtx, chromedp.Location())
		body, _ := chromedp.Run(infoCtx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		cancel()
		b.tb.Fatalf("browser step %q: %v\nat %s\n%.500s", name, err, loc, body)
	}
}

// run runs one action that returns a value (a read: no screenshot unless
// it fails).
func run[T any](b *browser, name string, a chromedp.Action[T]) T {
	b.tb.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	v, err := chromedp.Run(ctx, a)
	cancel()
	b.fail(name, err)
	return v
}

// saveShots writes the screenshots to the test's artifact directory with
// go test -artifacts, else to a temporary directory that is kept (the
// default artifact directory is removed with the test).
func (b *browser) saveShots() {
	dir := b.tb.ArtifactDir()
	if f := flag.Lookup("test.artifacts"); f == nil || f.Value.String() != "true" {
		d, err := os.MkdirTemp("", "authresolver-e2e-screenshots-")
		if err != nil {
			b.tb.Logf("screenshots: %v", err)
			return
		}
		dir = d
	}
	for i, s := range b.shots {
		if len(s.png) == 0 {
			continue
		}
		name := fmt.Sprintf("%02d-%s.png", i+1, strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
				return r
			}
			return '-'
		}, strings.ToLower(s.name)))
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, s.png, 0o644); err != nil {
			b.tb.Logf("screenshot %s: %v", name, err)
			continue
		}
		b.tb.Logf("screenshot: %s", path)
	}
}

// location returns the page's URL.
func (b *browser) location() string {
	b.tb.Helper()
	return run(b, "read location", chromedp.Location())
}

// text returns the text of the first element matching the CSS selector sel,
// once it is visible.
func (b *browser) text(sel string) string {
	b.tb.Helper()
	return run(b, "read "+sel, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
}

// loginService is the small login service a user of authresolver writes: a
// page with a sign-in button, which creates a session through the admin API
// and sets its cookie, and a sign-out link, which revokes the session
// through the admin API. It checks where it sends the browser back to: only
// to appBase.
type loginService struct {
	srv      *httptest.Server
	resolver atomic.Pointer[resolverProc]
	appBase  atomic.Pointer[string] // http://host:port of the protected site
	cookie   string
	signIns  atomic.Int32
}

func newLoginService(tb testing.TB) *loginService {
	tb.Helper()
	ls := &loginService{cookie: "session"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", ls.page)
	mux.HandleFunc("POST /login", ls.signIn)
	mux.HandleFunc("GET /logout", ls.signOut)
	ls.srv = httptest.NewServer(mux)
	tb.Cleanup(ls.srv.Close)
	return ls
}

// LoginURL is the AUTHRESOLVER_LOGIN_URL pointing at the service.
func (ls *loginService) LoginURL() string { return ls.srv.URL + "/login" }

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html><head><title>Test login</title></head><body>
<h1>Test login</h1>
<p>Return to: <code id="return-to">{{.}}</code></p>
<form method="post" action="/login"><input type="hidden" name="redirect_uri" value="{{.}}">
<button id="sign-in" type="submit">Sign in as alice</button></form>
</body></html>`))

// returnTo accepts only a URL on the protected site.
func (ls *loginService) returnTo(vs []string) (string, bool) {
	base := ls.appBase.Load()
	if len(vs) != 1 || base == nil || !strings.HasPrefix(vs[0], *base+"/") {
		return "", false
	}
	return vs[0], true
}

func (ls *loginService) page(w http.ResponseWriter, r *http.Request) {
	back, ok := ls.returnTo(r.URL.Query()["redirect_uri"])
	if !ok {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = loginPage.Execute(w, back)
}

func (ls *loginService) signIn(w http.ResponseWriter, r *http.Request) {
	back, ok := ls.returnTo([]string{r.PostFormValue("redirect_uri")})
	if !ok {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	var created session
	if err := ls.admin(r.Context(), http.MethodPost, "/v1/sessions", map[string]any{"user_id": "alice", "roles": []string{"staff"}}, http.StatusCreated, &created); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	ls.signIns.Add(1)
	// The cookie as the admin API wrote it; back is on the app's origin
	// (returnTo).
	w.Header().Add("Set-Cookie", created.Cookie)
	http.Redirect(w, r, back, http.StatusSeeOther) //nolint:gosec // G710, see above
}

// signOut revokes the session but leaves the cookie in the browser: the
// next navigation must be turned away by the resolver because of the
// revocation alone.
func (ls *loginService) signOut(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(ls.cookie)
	if err != nil {
		http.Error(w, "no session cookie", http.StatusBadRequest)
		return
	}
	if err := ls.admin(r.Context(), http.MethodDelete, "/v1/sessions/"+url.PathEscape(c.Value), nil, http.StatusNoContent, nil); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, *ls.appBase.Load()+"/app/", http.StatusSeeOther)
}

func (ls *loginService) admin(ctx context.Context, method, path string, body any, want int, out any) error {
	rp := ls.resolver.Load()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, rp.AdminURL()+path, rd) //nolint:gosec // G704: the resolver under test
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+rp.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req) //nolint:gosec // G704, see above
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("admin API %s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

var appPage = template.Must(template.New("app").Parse(`<!doctype html>
<html><head><title>Test app</title></head><body>
<h1>Hello, <span id="user">{{.User}}</span></h1>
<p>Session valid: <span id="valid">{{.Valid}}</span>, roles <span id="roles">{{.Roles}}</span></p>
<a id="sign-out" href="{{.Logout}}">Sign out</a>
</body></html>`))

// newBrowserApp is the app behind the proxy in the browser tests: a page
// showing the identity headers it received, and JSON for /app/api.
func newBrowserApp(tb testing.TB, ls *loginService) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/app/api") {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"user": r.Header.Get("X-Auth-User-Id")})
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = appPage.Execute(w, map[string]string{
			"User":   r.Header.Get("X-Auth-User-Id"),
			"Valid":  r.Header.Get("X-Auth-Session-Valid"),
			"Roles":  r.Header.Get("X-Auth-User-Roles"),
			"Logout": ls.srv.URL + "/logout",
		})
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// browserEnv is a resolver with a login URL pointing at a test login
// service, and the browser app as the upstream.
func browserEnv(tb testing.TB) (*env, *loginService) {
	tb.Helper()
	ls := newLoginService(tb)
	e := newEnv(tb, map[string]string{
		"AUTHRESOLVER_LOGIN_URL":           ls.LoginURL(),
		"AUTHRESOLVER_LOGIN_ALLOWED_HOSTS": "127.0.0.1",
	})
	ls.resolver.Store(e.Resolver)
	e.Upstream = newBrowserApp(tb, ls)
	return e, ls
}

// signInLoop drives the whole loop through a proxy at base whose /app/
// routes have the login requirement: a protected page sends the browser to
// the login page with the page's URL, signing in sends it back to the page
// with its identity, signing out (a revocation) sends it to the login page
// again, and a navigation after that too.
func signInLoop(t *testing.T, b *browser, base string, ls *loginService) {
	protected := base + "/app/page?x=1&y=two"
	wantLogin := ls.LoginURL() + "?redirect_uri=" + url.QueryEscape(protected)
	b.step("open protected page", chromedp.Navigate(protected), chromedp.WaitVisible(chromedp.CSS("#sign-in")))
	if got := b.location(); got != wantLogin {
		t.Fatalf("landed on %s, want the login page %s", got, wantLogin)
	}
	if got := b.text("#return-to"); got != protected {
		t.Errorf("login page returns to %q, want %q", got, protected)
	}
	b.step("sign in", chromedp.Click(chromedp.CSS("#sign-in")), chromedp.WaitVisible(chromedp.CSS("#user")))
	if got := b.location(); got != protected {
		t.Errorf("after signing in at %s, want %s", got, protected)
	}
	if got := b.text("#user"); got != "alice" {
		t.Errorf("page shows user %q, want alice", got)
	}
	if got := b.text("#roles"); got != "staff" {
		t.Errorf("page shows roles %q, want staff", got)
	}
	b.step("sign out", chromedp.Click(chromedp.CSS("#sign-out")), chromedp.WaitVisible(chromedp.CSS("#sign-in")))
	if got, want := b.location(), ls.LoginURL()+"?redirect_uri="+url.QueryEscape(base+"/app/"); got != want {
		t.Errorf("after signing out at %s, want %s", got, want)
	}
	b.step("open protected page again", chromedp.Navigate(protected), chromedp.WaitVisible(chromedp.CSS("#sign-in")))
	if got := b.location(); got != wantLogin {
		t.Errorf("after signing out, a navigation landed on %s, want %s", got, wantLogin)
	}
	if n := ls.signIns.Load(); n != 1 {
		t.Errorf("%d sign-ins, want 1", n)
	}
}

// fetchWithoutSession loads a public page and calls a login=redirect route
// with fetch(): an API call gets the 401 JSON, never a redirect.
func fetchWithoutSession(t *testing.T, b *browser, base string) {
	b.step("open public page", chromedp.Navigate(base+"/public/"), chromedp.WaitVisible(chromedp.CSS("#valid")))
	if got := b.text("#valid"); got != "false" {
		t.Errorf("public page: Session-Valid %q, want false", got)
	}
	for _, accept := range []string{"application/json", "*/*", "text/html"} {
		js := fmt.Sprintf(`fetch('/app/api', {headers: {'Accept': %q}, redirect: 'manual'}).then(async r => r.status + ' ' + r.type + ' ' + r.headers.get('Content-Type') + ' ' + (await r.text()).trim())`, accept)
		got := run(b, "fetch with Accept "+accept, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		if !strings.HasPrefix(got, "401 basic application/json {") || !strings.Contains(got, `"error":`) {
			t.Errorf("fetch with Accept %s: %q, want 401 with the JSON denial", accept, got)
		}
	}
}

// TestBrowserCaddy: the sign-in loop in Chromium through Caddy with the
// shipped Caddyfile (login=redirect), and fetch() from a page gets the 401.
func TestBrowserCaddy(t *testing.T) {
	t.Parallel()
	e, ls := browserEnv(t)
	base := startCaddy(t, e, caddyOptions{})
	ls.appBase.Store(&base)
	b := newBrowser(t)
	signInLoop(t, b, base, ls)
	fetchWithoutSession(t, b, base)
}

// TestBrowserDev opens the URL `authresolver dev` prints and completes its
// demo loop: login page, sign in, the app with the identity, a fetch() to
// its API, sign out, back to the login page.
func TestBrowserDev(t *testing.T) {
	t.Parallel()
	needBinary(t)
	cmd := exec.Command(binary, "dev")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTHRESOLVER_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "AUTHRESOLVER_LISTEN_ADDR=127.0.0.1:0", "AUTHRESOLVER_ADMIN_ADDR=127.0.0.1:0",
		"AUTHRESOLVER_DEMO_ADDR=127.0.0.1:0", "AUTHRESOLVER_LOG_FORMAT=json")
	p, err := startProcess(t, "authresolver dev", cmd, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.cleanup(t)
	printed := regexp.MustCompile(`Open in a browser:\s+(http://\S+)`)
	var demo string
	deadline := time.Now().Add(startTimeout)
	for demo == "" {
		if m := printed.FindStringSubmatch(p.out.String()); m != nil {
			demo = m[1]
		} else if !p.running() || time.Now().After(deadline) {
			t.Fatalf("authresolver dev printed no demo URL:\n%s", p.out.String())
		}
		time.Sleep(20 * time.Millisecond) // polling a process we started
	}

	b := newBrowser(t)
	b.step("open the printed URL", chromedp.Navigate(demo), chromedp.WaitVisible(chromedp.CSS("#sign-in")))
	if got, want := b.location(), strings.TrimSuffix(demo, "/")+"/login?redirect_uri="+url.QueryEscape(demo); got != want {
		t.Fatalf("landed on %s, want the demo login page %s", got, want)
	}
	b.step("sign in", chromedp.Click(chromedp.CSS("#sign-in")), chromedp.WaitVisible(chromedp.CSS("#user")))
	if got := b.text("#user"); got != "dev-user" {
		t.Errorf("demo app shows user %q, want dev-user", got)
	}
	b.step("call the API", chromedp.Click(chromedp.CSS("#call-api")))
	got := run(b, "read the API result", chromedp.Poll[string](`document.getElementById('api-result').textContent || null`))
	if !strings.HasPrefix(got, "200 ") || !strings.Contains(got, `"User-Id":"dev-user"`) {
		t.Errorf("fetch('/api/me') = %q, want 200 with the identity", got)
	}
	b.step("sign out", chromedp.Click(chromedp.CSS("#sign-out")), chromedp.WaitVisible(chromedp.CSS("#sign-in")))
	if got := b.location(); !strings.Contains(got, "/login?redirect_uri=") {
		t.Errorf("after signing out at %s, want the login page", got)
	}
}

// TestBrowserNginx: the same loop through NGINX with the shipped
// configuration (login=header: the resolver's 401 carries the login page,
// the config redirects to it).
func TestBrowserNginx(t *testing.T) {
	t.Parallel()
	e, ls := browserEnv(t)
	base := startNginx(t, e, nginxOptions{})
	ls.appBase.Store(&base)
	b := newBrowser(t)
	signInLoop(t, b, base, ls)
	fetchWithoutSession(t, b, base)
}
