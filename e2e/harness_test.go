package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/authresolver/authresolver/internal/syncbuf"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authresolver/authresolver/internal/redistest"
	"github.com/authresolver/authresolver/jwks/jwkstest"
)

// startTimeout bounds how long any process of the harness may take to answer.
const startTimeout = 15 * time.Second

// audience is the audience every test token carries and the resolver expects.
const audience = "e2e-api"

// lookPath finds an executable the suite drives. Without it the test is
// skipped, unless CI=true: then it fails and names the Debian package.
func lookPath(tb testing.TB, name, debianPackage string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s not found: apt-get install %s", name, debianPackage)
	}
	tb.Skipf("%s not found (apt-get install %s; with CI=true this fails)", name, debianPackage)
	return ""
}

// freePort returns a loopback TCP port that was free a moment ago. Callers
// that hand it to another process retry when that process cannot bind it.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// process is a child process owned by a test: it is stopped (SIGTERM, then
// SIGKILL after a grace period) when the test ends, and its output is logged
// if the test failed.
type process struct {
	name   string
	cmd    *exec.Cmd
	out    *syncbuf.Buffer
	exited chan struct{}
	err    error // set before exited is closed
}

func startProcess(tb testing.TB, name string, cmd *exec.Cmd, stderr io.Writer) (*process, error) {
	tb.Helper()
	p := &process{name: name, cmd: cmd, out: &syncbuf.Buffer{}, exited: make(chan struct{})}
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	if stderr != nil {
		cmd.Stderr = io.MultiWriter(p.out, stderr)
	}
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	return p, nil
}

// stop ends the process and waits for it; a stopped process stays stopped.
func (p *process) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// cleanup registers stop and, for a failed test, the process's output.
func (p *process) cleanup(tb testing.TB) {
	tb.Cleanup(func() {
		p.stop()
		if tb.Failed() {
			tb.Logf("--- %s output ---\n%s", p.name, p.out.String())
		}
	})
}

// waitHTTP polls url until it answers want, the process exits or the
// start timeout passes.
func waitHTTP(p *process, url string, want int) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		if !p.running() {
			return fmt.Errorf("%s exited: %v", p.name, p.err)
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer %s with %d within %v: %v", p.name, url, want, startTimeout, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a process we started
	}
}

// resolverProc is a running authresolver serve.
type resolverProc struct {
	*process
	ResolveAddr string // host:port of the resolve listener
	AdminAddr   string // host:port of the admin listener
	AdminToken  string
}

// ResolveURL returns the base URL of the resolve listener.
func (r *resolverProc) ResolveURL() string { return "http://" + r.ResolveAddr }

// AdminURL returns the base URL of the admin listener.
func (r *resolverProc) AdminURL() string { return "http://" + r.AdminAddr }

// startResolver runs the binary with the given AUTHRESOLVER_* variables on
// top of loopback listeners on port 0 and an admin token, and returns once
// both listeners are logged. The process environment's AUTHRESOLVER_*
// variables are not passed on.
func startResolver(tb testing.TB, env map[string]string) *resolverProc {
	tb.Helper()
	needBinary(tb)
	vars := map[string]string{
		"AUTHRESOLVER_LISTEN_ADDR": "127.0.0.1:0",
		"AUTHRESOLVER_ADMIN_ADDR":  "127.0.0.1:0",
		"AUTHRESOLVER_ADMIN_TOKEN": randomString(tb),
	}
	for k, v := range env {
		vars[k] = v
	}
	cmd := exec.Command(binary, "serve")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTHRESOLVER_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	pr, pw := io.Pipe()
	p, err := startProcess(tb, "authresolver", cmd, pw)
	if err != nil {
		tb.Fatal(err)
	}
	p.cleanup(tb)
	go func() { <-p.exited; pw.Close() }()

	addrs := make(chan map[string]string, 1)
	go func() {
		found := map[string]string{}
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var line struct {
				Msg      string `json:"msg"`
				Listener string `json:"listener"`
				Addr     string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &line) != nil || line.Msg != "listening" {
				continue
			}
			found[line.Listener] = line.Addr
			if found["resolve"] != "" && found["admin"] != "" {
				addrs <- found
				break
			}
		}
		_, _ = io.Copy(io.Discard, pr) // keep the pipe drained
	}()
	select {
	case found := <-addrs:
		r := &resolverProc{process: p, ResolveAddr: found["resolve"], AdminAddr: found["admin"], AdminToken: vars["AUTHRESOLVER_ADMIN_TOKEN"]}
		if err := waitHTTP(p, r.ResolveURL()+"/healthz", http.StatusOK); err != nil {
			tb.Fatal(err)
		}
		return r
	case <-p.exited:
		tb.Fatalf("authresolver exited before listening: %v\n%s", p.err, p.out.String())
	case <-time.After(startTimeout):
		tb.Fatalf("authresolver did not log both listeners within %v", startTimeout)
	}
	return nil
}

// env is a running resolver with its Redis, issuer and an echo upstream: what
// every proxy test puts a proxy in front of.
type env struct {
	Redis    *redistest.Server
	Issuer   *issuer
	Resolver *resolverProc
	Upstream *httptest.Server
}

// newEnv starts redis-server, an issuer, the resolver configured for both
// and an echo upstream. extra adds or overrides AUTHRESOLVER_* variables.
func newEnv(tb testing.TB, extra map[string]string) *env {
	tb.Helper()
	needBinary(tb)
	e := &env{Redis: redistest.Start(tb), Issuer: newIssuer(tb)}
	vars := map[string]string{
		"AUTHRESOLVER_REDIS_URL":    e.Redis.URL(),
		"AUTHRESOLVER_JWT_ISSUER":   e.Issuer.Issuer,
		"AUTHRESOLVER_JWT_JWKS_URL": e.Issuer.JWKSURL,
		"AUTHRESOLVER_JWT_AUDIENCE": audience,
	}
	for k, v := range extra {
		vars[k] = v
	}
	e.Resolver = startResolver(tb, vars)
	e.Upstream = newUpstream(tb)
	return e
}

// echo is what the upstream saw of a request that reached it.
type echo struct {
	Method string      `json:"method"`
	URI    string      `json:"uri"`
	Header http.Header `json:"header"`
	Body   int         `json:"body_bytes"`
}

// newUpstream starts the app behind the proxies: it answers 200 with the
// method, URI and headers it received as JSON, and marks its answers with
// X-Upstream so a test can tell them from the proxy's own.
func newUpstream(tb testing.TB) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", "echo")
		_ = json.NewEncoder(w).Encode(echo{Method: r.Method, URI: r.RequestURI, Header: r.Header, Body: int(n)})
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// issuer is an identity provider: an ES256 key served as a JWKS by
// jwkstest, and tokens signed with it.
type issuer struct {
	Issuer  string // the iss of its tokens
	JWKSURL string
	key     *jwkstest.Key
}

func newIssuer(tb testing.TB) *issuer {
	tb.Helper()
	key := jwkstest.NewKey("ES256", "e2e-"+randomString(tb)[:8])
	srv := jwkstest.NewServer(key)
	tb.Cleanup(srv.Close)
	return &issuer{Issuer: "https://issuer.e2e.test", JWKSURL: srv.URL(), key: key}
}

// claims are extra claims of a test token.
type claims map[string]any

// token returns an ES256 access token for sub with the issuer, audience,
// iat, exp (in 10 minutes) and a random jti, plus extra claims.
func (is *issuer) token(tb testing.TB, sub string, extra claims) string {
	tb.Helper()
	c := jwkstest.Claims(is.Issuer, sub, 10*time.Minute)
	c["aud"] = audience
	for k, v := range extra {
		c[k] = v
	}
	return is.key.Mint(c)
}

func randomString(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// client does not follow redirects: the tests look at them.
var client = &http.Client{
	Timeout: 10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// response is an answer with its body read.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// echo decodes the upstream's echo, failing the test if the answer did not
// come from the upstream.
func (r *response) echo(tb testing.TB) echo {
	tb.Helper()
	if r.Header.Get("X-Upstream") != "echo" {
		tb.Fatalf("answer did not come from the upstream: %d %v %s", r.Status, r.Header, r.Body)
	}
	var e echo
	if err := json.Unmarshal(r.Body, &e); err != nil {
		tb.Fatalf("upstream echo: %v: %s", err, r.Body)
	}
	return e
}

// do sends method url with the headers (name, value, name, value, ...).
func do(tb testing.TB, method, url string, body io.Reader, headers ...string) *response {
	tb.Helper()
	if len(headers)%2 != 0 {
		tb.Fatal("do: odd number of header arguments")
	}
	req, err := http.NewRequestWithContext(context.Background(), method, url, body)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Host") {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func get(tb testing.TB, url string, headers ...string) *response {
	tb.Helper()
	return do(tb, http.MethodGet, url, nil, headers...)
}

// wantStatus fails the test unless r has the status.
func wantStatus(tb testing.TB, r *response, want int) {
	tb.Helper()
	if r.Status != want {
		tb.Fatalf("status %d, want %d; headers %v; body %.300s", r.Status, want, r.Header, r.Body)
	}
}

// session is what the admin API answers to POST /v1/sessions.
type session struct {
	ID        string `json:"session_id"`
	Cookie    string `json:"cookie"`
	ExpiresAt string `json:"expires_at"`
	Handle    string `json:"handle"`
}

// createSession creates a session through the admin API.
func (r *resolverProc) createSession(tb testing.TB, body map[string]any) session {
	tb.Helper()
	resp := r.admin(tb, http.MethodPost, "/v1/sessions", body)
	wantStatus(tb, resp, http.StatusCreated)
	var s session
	if err := json.Unmarshal(resp.Body, &s); err != nil {
		tb.Fatalf("POST /v1/sessions: %v: %s", err, resp.Body)
	}
	if s.ID == "" || s.Cookie == "" || s.Handle == "" {
		tb.Fatalf("POST /v1/sessions: incomplete answer %s", resp.Body)
	}
	return s
}

// admin calls the admin API with the admin token and a JSON body (or none).
func (r *resolverProc) admin(tb testing.TB, method, path string, body any) *response {
	tb.Helper()
	var rd io.Reader
	headers := []string{"Authorization", "Bearer " + r.AdminToken}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(b)
		headers = append(headers, "Content-Type", "application/json")
	}
	return do(tb, method, r.AdminURL()+path, rd, headers...)
}

// sessionCookie returns the Cookie request header for s, from the Set-Cookie
// value the admin API gave, checking that it carries the session ID.
func sessionCookie(tb testing.TB, s session) string {
	tb.Helper()
	c, err := http.ParseSetCookie(s.Cookie)
	if err != nil {
		tb.Fatalf("admin API cookie %q: %v", s.Cookie, err)
	}
	if c.Value != s.ID {
		tb.Fatalf("admin API cookie value is not the session ID")
	}
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
		tb.Errorf("admin API cookie %q: want HttpOnly, Secure, SameSite=Lax, Path=/", s.Cookie)
	}
	return c.Name + "=" + c.Value
}

// identityHeaders are the identity headers the resolver may send (default
// prefix), in SPEC order.
var identityHeaders = []string{
	"X-Auth-Session-Valid",
	"X-Auth-User-Id",
	"X-Auth-User-Anonymous",
	"X-Auth-User-Verified",
	"X-Auth-User-Roles",
	"X-Auth-Session-Amr",
	"X-Auth-Session-Authenticated-At",
	"X-Auth-Expires-At",
	"X-Auth-Credential",
	"X-Auth-Issuer",
	"X-Auth-Session-Id",
	"X-Auth-Error",
}

// noForged fails the test if any X-Auth-* header the upstream saw carries the
// value a client forged.
func noForged(tb testing.TB, h http.Header, forged string) {
	tb.Helper()
	for name, vals := range h {
		if !strings.HasPrefix(strings.ToLower(name), "x-auth-") {
			continue
		}
		for _, v := range vals {
			if strings.Contains(v, forged) {
				tb.Errorf("client-sent %s: %q reached the upstream", name, v)
			}
		}
	}
}

// absent fails the test if the upstream saw a non-empty name.
func absent(tb testing.TB, h http.Header, names ...string) {
	tb.Helper()
	for _, name := range names {
		if v := h.Get(name); v != "" {
			tb.Errorf("upstream got %s: %q, want none", name, v)
		}
	}
}

// wantHeaders fails the test unless h has each name (pairs) with the value.
func wantHeaders(tb testing.TB, h http.Header, pairs ...string) {
	tb.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if got := h.Get(pairs[i]); got != pairs[i+1] {
			tb.Errorf("%s: %q, want %q", pairs[i], got, pairs[i+1])
		}
	}
}

// unixHeader parses a Unix-seconds identity header.
func unixHeader(tb testing.TB, h http.Header, name string) time.Time {
	tb.Helper()
	v := h.Get(name)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		tb.Errorf("%s: %q is not Unix seconds", name, v)
		return time.Time{}
	}
	return time.Unix(n, 0)
}

// onFreePort starts a server with start on a free loopback port and waits
// until ready says it serves, trying up to three ports: a free port can be
// taken before the server binds it. It returns the port.
func onFreePort(tb testing.TB, name string, start func(port int) *process, ready func(p *process, port int) error) int {
	tb.Helper()
	var lastErr error
	for range 3 {
		port := freePort(tb)
		p := start(port)
		if lastErr = ready(p, port); lastErr == nil {
			p.cleanup(tb)
			return port
		}
		p.stop()
		lastErr = fmt.Errorf("%v\n%s", lastErr, p.out.String())
	}
	tb.Fatalf("%s: %v", name, lastErr)
	return 0
}
