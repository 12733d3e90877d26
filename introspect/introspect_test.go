package introspect_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/authresolver/authresolver/internal/remote"
	"github.com/authresolver/authresolver/introspect"
	"github.com/authresolver/authresolver/resolver"
)

var now = time.Unix(1_800_000_000, 0)

const token = "opaque-token-0123456789"

// endpoint is an RFC 7662 endpoint that checks the request as a strict
// server would and answers with status, content type and body.
func endpoint(t *testing.T, status int, ctype, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if r.Method != http.MethodPost || !ok || id != "resolver%3A1" || secret != "s%26cret" {
			t.Errorf("request: method %s, basic auth %q:%q (%v)", r.Method, id, secret, ok)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.RawQuery != "" {
			t.Errorf("query %q: the token must travel in the body only", r.URL.RawQuery)
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("token") != token {
			t.Errorf("form %v (%v): want the token", r.PostForm, err)
		}
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newClient(t *testing.T, url string, mutate func(*introspect.Options)) *introspect.Client {
	t.Helper()
	opts := introspect.Options{
		URL: url, ClientID: "resolver:1", ClientSecret: "s&cret",
		Audiences: []string{"api"}, Leeway: 30 * time.Second,
		ExtraClaims: []string{"email", "groups"},
		Timeout:     2 * time.Second,
		Now:         func() time.Time { return now },
	}
	if mutate != nil {
		mutate(&opts)
	}
	c, err := introspect.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIntrospect(t *testing.T) {
	const js = "application/json; charset=utf-8"
	tests := []struct {
		name   string
		status int
		ctype  string
		body   string
		want   resolver.Reason
		err    bool
	}{
		{name: "active", body: `{"active":true,"sub":"alice","aud":"api","exp":1800000060,"iat":1799999990,"jti":"j1","scope":"read write","roles":["admin"],"email_verified":true,"email":"a@x","groups":["g1","g2"],"iss":"https://idp"}`},
		{name: "inactive", body: `{"active":false}`, want: resolver.ReasonTokenInactive},
		{name: "inactive with other members", body: `{"active":false,"sub":"alice"}`, want: resolver.ReasonTokenInactive},
		{name: "missing sub", body: `{"active":true,"aud":"api"}`, want: resolver.ReasonMissingClaim},
		{name: "empty sub", body: `{"active":true,"sub":"","aud":"api"}`, want: resolver.ReasonMissingClaim},
		{name: "expired", body: `{"active":true,"sub":"alice","aud":"api","exp":1799999970}`, want: resolver.ReasonExpired},
		{name: "expired within leeway", body: `{"active":true,"sub":"alice","aud":["x","api"],"exp":1799999971}`},
		{name: "not yet valid", body: `{"active":true,"sub":"alice","aud":"api","nbf":1800000031}`, want: resolver.ReasonNotYetValid},
		{name: "issued in future", body: `{"active":true,"sub":"alice","aud":"api","iat":1800000031}`, want: resolver.ReasonIssuedInFuture},
		{name: "wrong aud", body: `{"active":true,"sub":"alice","aud":"other"}`, want: resolver.ReasonAudience},
		{name: "no aud", body: `{"active":true,"sub":"alice"}`, want: resolver.ReasonAudience},
		{name: "active as string", body: `{"active":"true","sub":"alice","aud":"api"}`, err: true},
		{name: "active as number", body: `{"active":1,"sub":"alice","aud":"api"}`, err: true},
		{name: "active null", body: `{"active":null,"sub":"alice","aud":"api"}`, err: true},
		{name: "active missing", body: `{"sub":"alice","aud":"api"}`, err: true},
		{name: "Active capitalised", body: `{"Active":true,"sub":"alice","aud":"api"}`, err: true},
		{name: "duplicate active", body: `{"active":false,"active":true,"sub":"alice","aud":"api"}`, err: true},
		{name: "duplicate sub", body: `{"active":true,"sub":"alice","sub":"bob","aud":"api"}`, err: true},
		{name: "sub not a string", body: `{"active":true,"sub":42,"aud":"api"}`, err: true},
		{name: "exp not a number", body: `{"active":true,"sub":"alice","aud":"api","exp":"soon"}`, err: true},
		{name: "aud not strings", body: `{"active":true,"sub":"alice","aud":[1]}`, err: true},
		{name: "non-JSON", ctype: "text/html", body: `<html>login</html>`, err: true},
		{name: "HTML labelled JSON", body: `<html>login</html>`, err: true},
		{name: "array", body: `[{"active":true,"sub":"alice","aud":"api"}]`, err: true},
		{name: "string", body: `"active"`, err: true},
		{name: "trailing data", body: `{"active":true,"sub":"alice","aud":"api"}{}`, err: true},
		{name: "invalid UTF-8", body: "{\"active\":true,\"sub\":\"al\xffice\",\"aud\":\"api\"}", err: true},
		{name: "empty body", body: ``, err: true},
		{name: "500", status: 500, body: `{"active":true,"sub":"alice","aud":"api"}`, err: true},
		{name: "401", status: 401, body: `{"error":"invalid_client"}`, err: true},
		{name: "302", status: 302, body: ``, err: true},
		{name: "too large", body: `{"active":true,"sub":"alice","aud":"api","pad":"` + strings.Repeat("x", 70<<10) + `"}`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, ctype := tt.status, tt.ctype
			if status == 0 {
				status = http.StatusOK
			}
			if ctype == "" {
				ctype = js
			}
			srv := endpoint(t, status, ctype, tt.body)
			c := newClient(t, srv.URL, nil)
			id, reason, err := c.Introspect(context.Background(), token)
			if got := err != nil; got != tt.err {
				t.Fatalf("error %v, want error %v", err, tt.err)
			}
			if err != nil {
				if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "s&cret") {
					t.Errorf("error %q carries a secret", err)
				}
				if reason != resolver.ReasonNone || id.UserID != "" {
					t.Errorf("error with reason %q, identity %q", reason, id.UserID)
				}
				return
			}
			if reason != tt.want {
				t.Fatalf("reason %q, want %q", reason, tt.want)
			}
			if reason != resolver.ReasonNone && id.UserID != "" {
				t.Errorf("denial with identity %q", id.UserID)
			}
		})
	}
}

func TestIntrospectIdentity(t *testing.T) {
	srv := endpoint(t, 200, "application/json", `{"active":true,"sub":"alice","aud":"api","exp":1800000060,"iat":1799999990,"auth_time":1799990000,"jti":"j1","scope":"read write","roles":["admin"],"email_verified":"true","email":"a@x","groups":["g1","g2"],"iss":"https://idp","amr":["pwd"]}`)
	c := newClient(t, srv.URL, nil)
	got, reason, err := c.Introspect(context.Background(), token)
	if err != nil || reason != resolver.ReasonNone {
		t.Fatal(reason, err)
	}
	want := resolver.Identity{
		Credential: resolver.CredentialOpaque, UserID: "alice", Issuer: "https://idp", TokenID: "j1",
		Verified: true, Roles: []string{"admin"}, Scopes: []string{"read", "write"}, AMR: []string{"pwd"},
		IssuedAt: time.Unix(1799999990, 0), AuthenticatedAt: time.Unix(1799990000, 0),
		ExpiresAt: time.Unix(1800000060, 0), Claims: map[string]string{"email": "a@x", "groups": "g1,g2"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("identity (-want +got):\n%s", diff)
	}
}

func TestIntrospectAudienceUnchecked(t *testing.T) {
	srv := endpoint(t, 200, "application/json", `{"active":true,"sub":"alice"}`)
	c := newClient(t, srv.URL, func(o *introspect.Options) { o.Audiences = nil })
	if _, reason, err := c.Introspect(context.Background(), token); err != nil || reason != resolver.ReasonNone {
		t.Fatalf("reason %q, error %v; want an allow", reason, err)
	}
}

// TestIntrospectHang: an endpoint that never answers is an error after
// the timeout, not a stuck request.
func TestIntrospectHang(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		<-release
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	reg := prometheus.NewRegistry()
	c := newClient(t, srv.URL, func(o *introspect.Options) {
		o.Timeout = 50 * time.Millisecond
		o.Metrics = remote.NewMetrics(reg)
	})
	start := time.Now()
	_, _, err := c.Introspect(context.Background(), token)
	if err == nil {
		t.Fatal("no error from a hanging endpoint")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %s, want about the 50ms timeout", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want a deadline", err)
	}
	if got := remoteCount(t, reg, "introspection", "timeout"); got != 1 {
		t.Errorf("timeout count %v, want 1", got)
	}
}

// remoteCount returns authresolver_remote_requests_total{kind, outcome}.
func remoteCount(t *testing.T, reg *prometheus.Registry, kind, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "authresolver_remote_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == kind && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestIntrospectNoRedirect: a redirecting endpoint is an error, and the
// token never reaches the redirect's target.
func TestIntrospectNoRedirect(t *testing.T) {
	var leaked atomic.Bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		leaked.Store(true)
	}))
	t.Cleanup(elsewhere.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, nil)
	if _, _, err := c.Introspect(context.Background(), token); err == nil {
		t.Error("no error from a redirect")
	}
	if leaked.Load() {
		t.Error("the token was sent to the redirect target")
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		opts introspect.Options
	}{
		{"no URL", introspect.Options{ClientID: "a", ClientSecret: "b"}},
		{"plain http elsewhere", introspect.Options{URL: "http://idp.example/introspect", ClientID: "a", ClientSecret: "b"}},
		{"no secret", introspect.Options{URL: "https://idp.example/introspect", ClientID: "a"}},
		{"no client", introspect.Options{URL: "https://idp.example/introspect", ClientSecret: "b"}},
		{"empty audience", introspect.Options{URL: "https://idp.example/introspect", ClientID: "a", ClientSecret: "b", Audiences: []string{""}}},
		{"user info in URL", introspect.Options{URL: "https://u:p@idp.example/introspect", ClientID: "a", ClientSecret: "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := introspect.New(tt.opts); err == nil {
				t.Error("accepted")
			}
		})
	}
}
