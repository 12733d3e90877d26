package login_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/authresolver/authresolver/login"
)

func newRedirector(t *testing.T) *login.Redirector {
	t.Helper()
	rd, err := login.New(login.Options{
		URL:          "https://auth.example.com/login",
		AllowedHosts: []string{"app.example.com", ".apps.example.com", "127.0.0.1", "[::1]"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return rd
}

// loginFor is the Location expected for an original URL.
func loginFor(orig string) string {
	return "https://auth.example.com/login?redirect_uri=" + url.QueryEscape(orig)
}

// TestTargetForwarded rebuilds the original URL from Traefik's and Caddy's
// X-Forwarded-Proto/-Host/-Uri, and refuses every open-redirect shape.
func TestTargetForwarded(t *testing.T) {
	rd := newRedirector(t)
	tests := []struct {
		name             string
		proto, host, uri string
		want             string // Location; empty: no redirect
		err              error
	}{
		{"plain", "https", "app.example.com", "/page?x=1&y=%C3%A9", loginFor("https://app.example.com/page?x=1&y=%C3%A9"), nil},
		{"port kept", "http", "app.example.com:8443", "/", loginFor("http://app.example.com:8443/"), nil},
		{"subdomain", "https", "a.apps.example.com", "/", loginFor("https://a.apps.example.com/"), nil},
		{"deep subdomain", "https", "a.b.apps.example.com", "/", loginFor("https://a.b.apps.example.com/"), nil},
		{"host case", "https", "APP.Example.com", "/", loginFor("https://APP.Example.com/"), nil},
		{"proto case", "HTTPS", "app.example.com", "/", loginFor("https://app.example.com/"), nil},
		{"loopback IP", "http", "127.0.0.1:8080", "/x", loginFor("http://127.0.0.1:8080/x"), nil},
		{"IPv6", "http", "[::1]:8080", "/x", loginFor("http://[::1]:8080/x"), nil},

		{"foreign host", "https", "evil.example", "/", "", login.ErrHostNotAllowed},
		{"suffix without dot", "https", "evilapp.example.com", "/", "", login.ErrHostNotAllowed},
		{"apex of a subdomain entry", "https", "apps.example.com", "/", "", login.ErrHostNotAllowed},
		{"allowed host as a label", "https", "app.example.com.evil.example", "/", "", login.ErrHostNotAllowed},
		{"trailing dot", "https", "app.example.com.", "/", "", login.ErrUnsafeURL},
		{"other IP", "http", "127.0.0.2", "/", "", login.ErrHostNotAllowed},
		{"javascript scheme", "javascript", "app.example.com", "/", "", login.ErrUnsafeURL},
		{"ftp scheme", "ftp", "app.example.com", "/", "", login.ErrUnsafeURL},
		{"userinfo in host", "https", "app.example.com@evil.example", "/", "", login.ErrUnsafeURL},
		{"userinfo through the URI", "https", "app.example.com", "@evil.example/", "", login.ErrUnsafeURL},
		{"protocol-relative URI", "https", "app.example.com", "//evil.example/", "", login.ErrUnsafeURL},
		{"encoded slashes", "https", "app.example.com", "/%2F%2Fevil.example/", "", login.ErrUnsafeURL},
		{"backslash URI", "https", "app.example.com", "/\\evil.example", "", login.ErrUnsafeURL},
		{"encoded backslash", "https", "app.example.com", "/%5Cevil.example", "", login.ErrUnsafeURL},
		{"URI without slash", "https", "app.example.com", "evil", "", login.ErrUnsafeURL},
		{"encoded CR LF", "https", "app.example.com", "/%0d%0aSet-Cookie:%20x=1", "", login.ErrUnsafeURL},
		{"encoded NUL", "https", "app.example.com", "/%00", "", login.ErrUnsafeURL},
		{"raw tab", "https", "app.example.com", "/a\tb", "", login.ErrUnsafeURL},
		{"raw space", "https", "app.example.com", "/a b", "", login.ErrUnsafeURL},
		{"raw non-ASCII", "https", "app.example.com", "/é", "", login.ErrUnsafeURL},
		{"broken escape", "https", "app.example.com", "/%zz", "", login.ErrUnsafeURL},
		{"truncated escape", "https", "app.example.com", "/%0", "", login.ErrUnsafeURL},
		{"fragment", "https", "app.example.com", "/#x", "", login.ErrUnsafeURL},
		{"quote", "https", "app.example.com", `/"onload=`, "", login.ErrUnsafeURL},
		{"host list", "https", "app.example.com, evil.example", "/", "", login.ErrUnsafeURL},
		{"host with path", "https", "app.example.com/x", "/", "", login.ErrUnsafeURL},
		{"bad port", "https", "app.example.com:80x", "/", "", login.ErrUnsafeURL},
		{"empty port", "https", "app.example.com:", "/", "", login.ErrUnsafeURL},
		{"IPv6 zone", "http", "[::1%25eth0]", "/", "", login.ErrUnsafeURL},
		{"too long", "https", "app.example.com", "/" + strings.Repeat("a", login.MaxURLBytes), "", login.ErrUnsafeURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			h.Set("X-Forwarded-Proto", tt.proto)
			h.Set("X-Forwarded-Host", tt.host)
			h.Set("X-Forwarded-Uri", tt.uri)
			got, err := rd.Target(h)
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("Target error = %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Errorf("Target = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestTargetOriginalURL covers X-Original-URL, which the NGINX configuration
// sets, and the header combinations that give no redirect.
func TestTargetOriginalURL(t *testing.T) {
	rd := newRedirector(t)
	tests := []struct {
		name    string
		headers []string // name, value pairs
		want    string
		err     error
	}{
		{"nginx", []string{"X-Original-URL", "https://app.example.com/a?b=c"}, loginFor("https://app.example.com/a?b=c"), nil},
		{"no path", []string{"X-Original-URL", "https://app.example.com"}, loginFor("https://app.example.com"), nil},
		{"proto alongside is ignored", []string{"X-Original-URL", "https://app.example.com/", "X-Forwarded-Proto", "http"}, loginFor("https://app.example.com/"), nil},

		{"nothing", nil, "", login.ErrNoOriginalURL},
		{"no host", []string{"X-Forwarded-Proto", "https", "X-Forwarded-Uri", "/"}, "", login.ErrNoOriginalURL},
		{"no uri", []string{"X-Forwarded-Proto", "https", "X-Forwarded-Host", "app.example.com"}, "", login.ErrNoOriginalURL},
		{"no proto", []string{"X-Forwarded-Host", "app.example.com", "X-Forwarded-Uri", "/"}, "", login.ErrNoOriginalURL},
		{"original URL twice", []string{"X-Original-URL", "https://app.example.com/", "X-Original-URL", "https://evil.example/"}, "", login.ErrAmbiguous},
		{"host twice", []string{"X-Forwarded-Proto", "https", "X-Forwarded-Host", "app.example.com", "X-Forwarded-Host", "evil.example", "X-Forwarded-Uri", "/"}, "", login.ErrAmbiguous},
		{"original URL and forwarded host", []string{"X-Original-URL", "https://app.example.com/", "X-Forwarded-Host", "app.example.com"}, "", login.ErrAmbiguous},
		{"original URL and forwarded uri", []string{"X-Original-URL", "https://app.example.com/", "X-Forwarded-Uri", "/"}, "", login.ErrAmbiguous},

		{"foreign host", []string{"X-Original-URL", "https://evil.example/"}, "", login.ErrHostNotAllowed},
		{"protocol-relative", []string{"X-Original-URL", "//evil.example/"}, "", login.ErrUnsafeURL},
		{"relative", []string{"X-Original-URL", "/path"}, "", login.ErrUnsafeURL},
		{"slash backslash", []string{"X-Original-URL", `https:/\evil.example/`}, "", login.ErrUnsafeURL},
		{"backslashes", []string{"X-Original-URL", `https:\\evil.example/`}, "", login.ErrUnsafeURL},
		{"one slash", []string{"X-Original-URL", "https:/evil.example/"}, "", login.ErrUnsafeURL},
		{"no slash", []string{"X-Original-URL", "https:app.example.com/"}, "", login.ErrUnsafeURL},
		{"three slashes", []string{"X-Original-URL", "https:///evil.example/"}, "", login.ErrUnsafeURL},
		{"javascript", []string{"X-Original-URL", "javascript:alert(1)//app.example.com/"}, "", login.ErrUnsafeURL},
		{"javascript with host", []string{"X-Original-URL", "javascript://app.example.com/%0aalert(1)"}, "", login.ErrUnsafeURL},
		{"data", []string{"X-Original-URL", "data:text/html,<script>"}, "", login.ErrUnsafeURL},
		{"userinfo", []string{"X-Original-URL", "https://app.example.com@evil.example/"}, "", login.ErrUnsafeURL},
		{"userinfo of an allowed host", []string{"X-Original-URL", "https://user:pw@app.example.com/"}, "", login.ErrUnsafeURL},
		{"double slash path", []string{"X-Original-URL", "https://app.example.com//evil.example/"}, "", login.ErrUnsafeURL},
		{"encoded CRLF", []string{"X-Original-URL", "https://app.example.com/%0D%0ALocation:%20https://evil.example"}, "", login.ErrUnsafeURL},
		{"encoded CRLF in query", []string{"X-Original-URL", "https://app.example.com/?a=%0a"}, "", login.ErrUnsafeURL},
		{"encoded DEL", []string{"X-Original-URL", "https://app.example.com/%7f"}, "", login.ErrUnsafeURL},
		{"fragment", []string{"X-Original-URL", "https://app.example.com/#@evil.example"}, "", login.ErrUnsafeURL},
		{"uppercase scheme", []string{"X-Original-URL", "HTTPS://app.example.com/"}, loginFor("HTTPS://app.example.com/"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for i := 0; i < len(tt.headers); i += 2 {
				h.Add(tt.headers[i], tt.headers[i+1])
			}
			got, err := rd.Target(h)
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("Target error = %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Errorf("Target = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestLocationEncodesEverything: whatever the original URL holds, the
// Location is the login URL with one parameter whose decoded value is
// exactly the original URL, and nothing in it can end the header.
func TestLocationEncodesEverything(t *testing.T) {
	rd, err := login.New(login.Options{URL: "https://auth.example.com/login?client_id=app", Param: "rd", AllowedHosts: []string{"app.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	orig := "https://app.example.com/a%20b/?q=1&redirect_uri=https://evil.example&x=%26%3D%23"
	h := http.Header{"X-Original-Url": {orig}}
	got, err := rd.Target(h)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(url.Values{"client_id": {"app"}, "rd": {orig}}, u.Query()); diff != "" {
		t.Errorf("login query (-want +got):\n%s", diff)
	}
	if u.Scheme+"://"+u.Host+u.Path != "https://auth.example.com/login" {
		t.Errorf("Location %q does not go to the login page", got)
	}
	if strings.ContainsAny(got, "\r\n \t#") {
		t.Errorf("Location %q has a character that needs encoding", got)
	}
}

func TestNew(t *testing.T) {
	ok := []string{"app.example.com"}
	tests := []struct {
		name string
		o    login.Options
		err  error // nil: accepted
	}{
		{"https", login.Options{URL: "https://auth.example.com/login", AllowedHosts: ok}, nil},
		{"http localhost", login.Options{URL: "http://localhost:3000/login", AllowedHosts: ok}, nil},
		{"http 127.0.0.1", login.Options{URL: "http://127.0.0.1:3000/login", AllowedHosts: ok}, nil},
		{"http ::1", login.Options{URL: "http://[::1]:3000/login", AllowedHosts: ok}, nil},
		{"query kept", login.Options{URL: "https://auth.example.com/login?a=b", AllowedHosts: ok}, nil},
		{"param", login.Options{URL: "https://auth.example.com/", Param: "return_to", AllowedHosts: ok}, nil},
		{"IPs allowed", login.Options{URL: "https://auth.example.com/", AllowedHosts: []string{"10.0.0.1", "::1", "[::2]"}}, nil},

		{"empty URL", login.Options{AllowedHosts: ok}, login.ErrLoginURL},
		{"http elsewhere", login.Options{URL: "http://auth.example.com/login", AllowedHosts: ok}, login.ErrLoginURL},
		{"relative", login.Options{URL: "/login", AllowedHosts: ok}, login.ErrLoginURL},
		{"protocol-relative", login.Options{URL: "//auth.example.com/login", AllowedHosts: ok}, login.ErrLoginURL},
		{"javascript", login.Options{URL: "javascript:alert(1)", AllowedHosts: ok}, login.ErrLoginURL},
		{"userinfo", login.Options{URL: "https://u:p@auth.example.com/", AllowedHosts: ok}, login.ErrLoginURL},
		{"fragment", login.Options{URL: "https://auth.example.com/#x", AllowedHosts: ok}, login.ErrLoginURL},
		{"space", login.Options{URL: "https://auth.example.com/a b", AllowedHosts: ok}, login.ErrLoginURL},
		{"param already there", login.Options{URL: "https://auth.example.com/?redirect_uri=x", AllowedHosts: ok}, login.ErrLoginURL},
		{"param with =", login.Options{URL: "https://auth.example.com/", Param: "a=b", AllowedHosts: ok}, login.ErrParam},
		{"param with &", login.Options{URL: "https://auth.example.com/", Param: "a&b", AllowedHosts: ok}, login.ErrParam},
		{"no hosts", login.Options{URL: "https://auth.example.com/"}, login.ErrAllowedHosts},
		{"wildcard", login.Options{URL: "https://auth.example.com/", AllowedHosts: []string{"*.example.com"}}, login.ErrAllowedHosts},
		{"scheme", login.Options{URL: "https://auth.example.com/", AllowedHosts: []string{"https://app.example.com"}}, login.ErrAllowedHosts},
		{"port", login.Options{URL: "https://auth.example.com/", AllowedHosts: []string{"app.example.com:443"}}, login.ErrAllowedHosts},
		{"bare dot", login.Options{URL: "https://auth.example.com/", AllowedHosts: []string{"."}}, login.ErrAllowedHosts},
		{"empty entry", login.Options{URL: "https://auth.example.com/", AllowedHosts: []string{""}}, login.ErrAllowedHosts},
		{"dot IP", login.Options{URL: "https://auth.example.com/", AllowedHosts: []string{".10.0.0.1"}}, login.ErrAllowedHosts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := login.New(tt.o)
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Errorf("New error = %v, want %v", err, tt.err)
			}
		})
	}
}

// TestNavigation: only a browser's top-level GET/HEAD asking for HTML is
// redirected; fetch, XHR and API clients always get the 401.
func TestNavigation(t *testing.T) {
	const html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	tests := []struct {
		name    string
		method  string
		headers []string
		want    bool
	}{
		{"browser", "GET", []string{"Accept", html, "Sec-Fetch-Mode", "navigate"}, true},
		{"browser without fetch metadata", "GET", []string{"Accept", html}, true},
		{"HEAD", "HEAD", []string{"Accept", "text/html"}, true},
		{"Accept case", "GET", []string{"Accept", "Text/HTML; charset=utf-8"}, true},
		{"forwarded GET", "GET", []string{"X-Forwarded-Method", "GET", "Accept", html}, true},
		{"nginx original GET", "GET", []string{"X-Original-Method", "GET", "Accept", html}, true},

		{"forwarded POST", "GET", []string{"X-Forwarded-Method", "POST", "Accept", html}, false},
		{"nginx original POST", "GET", []string{"X-Original-Method", "POST", "Accept", html}, false},
		{"methods disagree", "GET", []string{"X-Forwarded-Method", "GET", "X-Original-Method", "POST", "Accept", html}, false},
		{"method twice", "GET", []string{"X-Forwarded-Method", "GET", "X-Forwarded-Method", "GET", "Accept", html}, false},
		{"POST (Envoy)", "POST", []string{"Accept", html}, false},
		{"fetch", "GET", []string{"Accept", "*/*", "Sec-Fetch-Mode", "cors"}, false},
		{"fetch asking for HTML", "GET", []string{"Accept", "text/html", "Sec-Fetch-Mode", "cors"}, false},
		{"no-cors", "GET", []string{"Accept", html, "Sec-Fetch-Mode", "no-cors"}, false},
		{"fetch mode twice", "GET", []string{"Accept", html, "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Mode", "cors"}, false},
		{"XHR", "GET", []string{"Accept", html, "X-Requested-With", "XMLHttpRequest"}, false},
		{"XHR lower case", "GET", []string{"Accept", html, "X-Requested-With", "xmlhttprequest"}, false},
		{"JSON API", "GET", []string{"Accept", "application/json"}, false},
		{"curl", "GET", []string{"Accept", "*/*"}, false},
		{"no Accept", "GET", nil, false},
		{"html refused", "GET", []string{"Accept", "text/html;q=0, application/json"}, false},
		{"html refused 0.000", "GET", []string{"Accept", "text/html; q=0.000"}, false},
		{"html low but accepted", "GET", []string{"Accept", "application/json, text/html;q=0.1"}, true},
		{"html-like type", "GET", []string{"Accept", "text/htmlx"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/resolve", nil)
			for i := 0; i < len(tt.headers); i += 2 {
				r.Header.Add(tt.headers[i], tt.headers[i+1])
			}
			if got := login.Navigation(r); got != tt.want {
				t.Errorf("Navigation = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLocation joins both checks: an API call to an allowed host gets no
// Location, a navigation does.
func TestLocation(t *testing.T) {
	rd := newRedirector(t)
	nav := httptest.NewRequest("GET", "/resolve", nil)
	nav.Header.Set("Accept", "text/html")
	nav.Header.Set("X-Original-URL", "https://app.example.com/")
	if got, ok := rd.Location(nav); !ok || got != loginFor("https://app.example.com/") {
		t.Errorf("navigation: Location = %q, %v", got, ok)
	}
	api := nav.Clone(nav.Context())
	api.Header.Set("Accept", "application/json")
	if got, ok := rd.Location(api); ok {
		t.Errorf("API call: Location = %q, want none", got)
	}
}

// TestCheck is what a login service asks before sending a browser back.
func TestCheck(t *testing.T) {
	rd := newRedirector(t)
	for raw, want := range map[string]error{
		"https://app.example.com/x": nil,
		"https://evil.example/":     login.ErrHostNotAllowed,
		"//evil.example/":           login.ErrUnsafeURL,
		"/x":                        login.ErrUnsafeURL,
	} {
		if _, err := rd.Check(raw); !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Errorf("Check(%q) = %v, want %v", raw, err, want)
		}
	}
}
