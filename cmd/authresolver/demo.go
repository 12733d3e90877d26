package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/authresolver/authresolver/login"
)

// The browser demo of `authresolver dev`, and nothing of `serve`: a tiny app
// behind its own forward-auth check (it calls /resolve?login=redirect as a
// proxy would) and a login page that creates a session for devUser through
// the admin API and sets its cookie. It is plain HTTP on loopback, so its
// cookie is not Secure; a real login service runs on HTTPS and passes the
// admin API's Set-Cookie value on unchanged.

// demo serves the browser demo on its own listener.
type demo struct {
	base     string // http://host:port of the demo, as printed
	resolve  string // base URL of the resolve listener
	admin    string // base URL of the admin listener
	token    string // admin token
	cookie   string // session cookie name
	prefix   string // identity header prefix
	redirect *login.Redirector
	client   *http.Client
	log      *slog.Logger
}

// listenDemo binds the demo listener (loopback only: it hands out sessions
// to anyone who asks) and returns it with the login redirector that points
// at its login page.
func listenDemo(addr string) (net.Listener, *login.Redirector, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, bad("DEMO_ADDR", "want host:port, got %q", addr)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, nil, bad("DEMO_ADDR", "%q: the demo hands out sessions to anyone: listen on a loopback IP address", addr)
	}
	ln, err := listenTCP(addr, "DEMO_ADDR")
	if err != nil {
		return nil, nil, err
	}
	base := "http://" + ln.Addr().String()
	rd, err := login.New(login.Options{URL: base + "/login", AllowedHosts: []string{host}})
	if err != nil {
		ln.Close()
		return nil, nil, fmt.Errorf("dev: demo: %w", err)
	}
	return ln, rd, nil
}

// runDemo serves the demo on ln until ctx is done.
func runDemo(ctx context.Context, a *app, ln net.Listener, rd *login.Redirector) {
	d := &demo{
		base:     "http://" + ln.Addr().String(),
		resolve:  "http://" + loopback(a.resolveAddr),
		admin:    "http://" + loopback(a.adminAddr),
		token:    a.cfg.AdminToken,
		cookie:   a.cfg.SessionCookie,
		prefix:   a.cfg.HeaderPrefix,
		redirect: rd,
		client: &http.Client{
			Timeout:       5 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		log: a.log,
	}
	srv := newServer(d.routes(), a.log)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("demo stopped", "error", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
	}()
}

func (d *demo) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", d.page)
	mux.HandleFunc("GET /api/me", d.me)
	mux.HandleFunc("GET /login", d.loginPage)
	mux.HandleFunc("POST /login", d.signIn)
	mux.HandleFunc("POST /logout", d.signOut)
	return mux
}

// check asks the resolver about r exactly as a proxy's forward auth would:
// the client's headers plus X-Forwarded-*, and the route's requirement in
// the resolve URL's query, never the client's.
func (d *demo) check(r *http.Request, requirement string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, d.resolve+"/resolve?"+requirement, nil)
	if err != nil {
		return nil, err
	}
	for name, vs := range r.Header {
		if !strings.HasPrefix(name, "X-Forwarded-") && !strings.HasPrefix(name, "X-Original-") {
			req.Header[name] = vs
		}
	}
	req.Header.Set("X-Forwarded-Method", r.Method)
	req.Header.Set("X-Forwarded-Proto", "http")
	req.Header.Set("X-Forwarded-Host", r.Host)
	req.Header.Set("X-Forwarded-Uri", r.URL.RequestURI())
	return d.client.Do(req)
}

// passOn answers a denial as the proxy would: the resolver's status,
// Location, WWW-Authenticate and body.
func passOn(w http.ResponseWriter, resp *http.Response) {
	for _, name := range []string{"Location", "Www-Authenticate", "Content-Type"} {
		if v := resp.Header.Get(name); v != "" {
			w.Header().Set(name, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, 64<<10))
}

// identity is what the resolver said about the caller: its identity
// headers, without the prefix.
func (d *demo) identity(resp *http.Response) map[string]string {
	id := map[string]string{}
	for name, vs := range resp.Header {
		if n, ok := strings.CutPrefix(name, http.CanonicalHeaderKey(d.prefix)); ok && len(vs) > 0 {
			id[n] = vs[0]
		}
	}
	return id
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>authresolver demo app</title></head>
<body>
<p><strong>Demo only</strong> (authresolver dev): never run this in production.</p>
<h1>Hello, <span id="user">{{.User}}</span></h1>
<p>This page is behind forward auth with <code>login=redirect</code>. The resolver said:</p>
<table id="identity">{{range $k, $v := .Identity}}<tr><td>{{$k}}</td><td>{{$v}}</td></tr>{{end}}</table>
<p><button id="call-api" type="button">fetch('/api/me')</button> <code id="api-result"></code></p>
<form method="post" action="/logout"><button id="sign-out" type="submit">Sign out</button></form>
<script>
document.getElementById('call-api').onclick = async () => {
  const r = await fetch('/api/me', {headers: {'Accept': 'application/json'}});
  document.getElementById('api-result').textContent = r.status + ' ' + await r.text();
};
</script>
</body></html>
`))

// page is the protected demo app: a navigation without a session is sent
// to the login page by the resolver's 302.
func (d *demo) page(w http.ResponseWriter, r *http.Request) {
	id, ok := d.authorize(w, r, "login=redirect")
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = pageTmpl.Execute(w, struct {
		User     string
		Identity map[string]string
	}{id["User-Id"], id})
}

// me is a protected API of the demo app: it never redirects.
func (d *demo) me(w http.ResponseWriter, r *http.Request) {
	id, ok := d.authorize(w, r, "")
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(id)
}

// authorize asks the resolver about r with the route's requirement. On an
// allow it returns the identity the resolver gave; otherwise it has
// written the resolver's answer (or a 502) to w.
func (d *demo) authorize(w http.ResponseWriter, r *http.Request, require string) (map[string]string, bool) {
	resp, err := d.check(r, require)
	if err != nil {
		http.Error(w, "resolver unreachable", http.StatusBadGateway)
		return nil, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		passOn(w, resp)
		return nil, false
	}
	return d.identity(resp), true
}

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>authresolver demo login</title></head>
<body>
<p><strong>Demo only</strong> (authresolver dev): this page signs anyone in.</p>
<h1>Sign in</h1>
<form method="post" action="/login">
<input type="hidden" name="redirect_uri" value="{{.}}">
<button id="sign-in" type="submit">Sign in as dev-user</button>
</form>
</body></html>
`))

// loginPage shows the sign-in button, once the URL to return to is known
// to be allowed: the login page is where open redirects usually happen.
func (d *demo) loginPage(w http.ResponseWriter, r *http.Request) {
	back, ok := d.returnTo(w, r.URL.Query()[login.DefaultParam])
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = loginTmpl.Execute(w, back)
}

// signIn creates a session for devUser through the admin API, sets its
// cookie and sends the browser back.
func (d *demo) signIn(w http.ResponseWriter, r *http.Request) {
	if !d.sameOrigin(w, r) {
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	back, ok := d.returnTo(w, r.PostForm[login.DefaultParam])
	if !ok {
		return
	}
	var created struct {
		Cookie string `json:"cookie"`
	}
	body := map[string]any{
		"user_id": devUser, "verified": true, "roles": []string{"admin"}, "amr": []string{"pwd"},
		"attributes": map[string]string{"email": "dev@example.com"}, "ttl": "1h",
	}
	if err := d.callAdmin(r.Context(), http.MethodPost, "/v1/sessions", body, http.StatusCreated, &created); err != nil {
		d.log.Error("demo: create session", "error", err)
		http.Error(w, "could not create a session", http.StatusBadGateway)
		return
	}
	c, err := http.ParseSetCookie(created.Cookie)
	if err != nil {
		http.Error(w, "bad cookie from the admin API", http.StatusBadGateway)
		return
	}
	c.Secure = false // plain HTTP on loopback; demo only
	http.SetCookie(w, c)
	http.Redirect(w, r, back, http.StatusSeeOther) //nolint:gosec // G710: back passed login.Redirector.Check (returnTo)
}

// signOut revokes the session through the admin API and clears the cookie.
func (d *demo) signOut(w http.ResponseWriter, r *http.Request) {
	if !d.sameOrigin(w, r) {
		return
	}
	if c, err := r.Cookie(d.cookie); err == nil {
		if err := d.callAdmin(r.Context(), http.MethodDelete, "/v1/sessions/"+url.PathEscape(c.Value), nil, http.StatusNoContent, nil); err != nil {
			d.log.Warn("demo: revoke session", "error", err)
		}
	}
	// Deletes the cookie; not Secure, as the demo is plain HTTP on loopback.
	http.SetCookie(w, &http.Cookie{Name: d.cookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode}) //nolint:gosec // G124, see above
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// returnTo checks the URL to send the browser back to, answering 400 when
// it is missing, given twice or not allowed.
func (d *demo) returnTo(w http.ResponseWriter, vs []string) (string, bool) {
	if len(vs) != 1 {
		http.Error(w, "want exactly one "+login.DefaultParam, http.StatusBadRequest)
		return "", false
	}
	if _, err := d.redirect.Check(vs[0]); err != nil {
		http.Error(w, login.DefaultParam+" is not allowed", http.StatusBadRequest)
		return "", false
	}
	return vs[0], true
}

// sameOrigin refuses a cross-site form post (sign-in or sign-out CSRF).
func (d *demo) sameOrigin(w http.ResponseWriter, r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
		http.Error(w, "cross-origin form post", http.StatusForbidden)
		return false
	}
	return true
}

// callAdmin calls the admin API with the admin token and decodes a JSON
// answer into out (when not nil).
func (d *demo) callAdmin(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.admin+path, rd) //nolint:gosec // G704: our own admin listener
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.client.Do(req) //nolint:gosec // G704, see above
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("admin API: %s %s answered %d", method, path, resp.StatusCode)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(out)
}
