package profile_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authresolver/authresolver/profile"
	"github.com/authresolver/authresolver/profile/stacktest"
	"github.com/authresolver/authresolver/resolver"
)

func stackSource(t *testing.T, srv *stacktest.Server, mutate func(*profile.Options)) *profile.Source {
	t.Helper()
	opts := profile.Options{
		Issuer: srv.Issuer(false), StackProjectID: srv.ProjectID, StackSecretServerKey: srv.ServerKey,
		StackAPIURL: srv.URL, ExtraClaims: []string{"primary_email", "display_name", "client_metadata"},
		Timeout: time.Second,
	}
	if mutate != nil {
		mutate(&opts)
	}
	s, err := profile.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStack(t *testing.T) {
	srv := stacktest.New("proj-1", "ssk_secret")
	t.Cleanup(srv.Close)
	src := stackSource(t, srv, nil)
	alice := stacktest.User{ID: "u-alice", Email: "alice@example.com", EmailVerified: true, DisplayName: "Alice"}
	tok := srv.Mint(alice, time.Hour)
	id := resolver.Identity{UserID: "u-alice", Issuer: srv.Issuer(false)}

	got, reason, err := src.Fetch(context.Background(), &id, tok)
	if err != nil || reason != resolver.ReasonNone {
		t.Fatal(reason, err)
	}
	want := resolver.Profile{
		UserID: "u-alice", Verified: true, HasVerified: true, HasAnonymous: true,
		Claims: map[string]string{"primary_email": "alice@example.com", "display_name": "Alice", "client_metadata": `{"theme":"dark"}`},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("profile (-want +got):\n%s", diff)
	}

	// Signed out at the provider: rejected.
	srv.Revoke(tok)
	if _, reason, err := src.Fetch(context.Background(), &id, tok); err != nil || reason != resolver.ReasonTokenRejected {
		t.Errorf("revoked token: reason %q, error %v; want token_rejected", reason, err)
	}
}

func TestStackRestrictedIsNotVerified(t *testing.T) {
	srv := stacktest.New("proj-1", "ssk_secret")
	t.Cleanup(srv.Close)
	tok := srv.Mint(stacktest.User{ID: "u-r", Email: "r@example.com", EmailVerified: true, Restricted: true}, time.Hour)
	id := resolver.Identity{UserID: "u-r"}
	got, _, err := stackSource(t, srv, nil).Fetch(context.Background(), &id, tok)
	if err != nil || got.Verified || !got.HasVerified {
		t.Errorf("restricted user: verified %v (has %v), error %v; want not verified", got.Verified, got.HasVerified, err)
	}
}

// TestStackContract: the test server refuses a request missing any of the
// four headers (so TestStack shows the source sends them all). Stack
// answers a wrong server key 401, as it does a bad token: token_rejected,
// never an allow.
func TestStackContract(t *testing.T) {
	srv := stacktest.New("proj-1", "ssk_secret")
	t.Cleanup(srv.Close)
	tok := srv.Mint(stacktest.User{ID: "u-1"}, time.Hour)
	id := resolver.Identity{UserID: "u-1"}
	wrongKey := stackSource(t, srv, func(o *profile.Options) { o.StackSecretServerKey = "ssk_wrong" })
	if _, reason, _ := wrongKey.Fetch(context.Background(), &id, tok); reason != resolver.ReasonTokenRejected {
		t.Errorf("wrong server key: reason %q, want token_rejected", reason)
	}
	for _, drop := range []string{"X-Stack-Access-Type", "X-Stack-Project-Id", "X-Stack-Secret-Server-Key", "X-Stack-Access-Token"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/users/me", nil)
		req.Header.Set("X-Stack-Access-Type", "server")
		req.Header.Set("X-Stack-Project-Id", "proj-1")
		req.Header.Set("X-Stack-Secret-Server-Key", "ssk_secret")
		req.Header.Set("X-Stack-Access-Token", tok)
		req.Header.Del(drop)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("without %s: status %d, want 401", drop, res.StatusCode)
		}
	}
}

func TestFetchAnswers(t *testing.T) {
	tests := []struct {
		name   string
		status int
		ctype  string
		body   string
		want   resolver.Reason
		err    bool
	}{
		{name: "ok", body: `{"sub":"alice","email_verified":true,"roles":["admin"],"email":"a@x"}`},
		{name: "401", status: 401, want: resolver.ReasonTokenRejected},
		{name: "403", status: 403, want: resolver.ReasonTokenRejected},
		{name: "404", status: 404, want: resolver.ReasonTokenRejected},
		{name: "500", status: 500, err: true},
		{name: "429", status: 429, err: true},
		{name: "302", status: 302, err: true},
		{name: "another user", body: `{"sub":"bob"}`, err: true},
		{name: "no subject", body: `{"email":"a@x"}`, err: true},
		{name: "Sub capitalised", body: `{"Sub":"alice"}`, err: true},
		{name: "duplicate sub", body: `{"sub":"bob","sub":"alice"}`, err: true},
		{name: "not JSON", ctype: "text/html", body: `<html></html>`, err: true},
		{name: "signed JWT answer", ctype: "application/jwt", body: `a.b.c`, err: true},
		{name: "array", body: `[{"sub":"alice"}]`, err: true},
		{name: "verified of wrong type", body: `{"sub":"alice","email_verified":1}`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer tok-1" {
					t.Errorf("Authorization %q", r.Header.Get("Authorization"))
				}
				ctype := tt.ctype
				if ctype == "" {
					ctype = "application/json"
				}
				w.Header().Set("Content-Type", ctype)
				if tt.status != 0 {
					w.WriteHeader(tt.status)
				}
				_, _ = w.Write([]byte(tt.body))
			}))
			t.Cleanup(srv.Close)
			src, err := profile.New(profile.Options{Issuer: "https://idp", UserinfoURL: srv.URL, ExtraClaims: []string{"email"}})
			if err != nil {
				t.Fatal(err)
			}
			id := resolver.Identity{UserID: "alice", Issuer: "https://idp"}
			p, reason, err := src.Fetch(context.Background(), &id, "tok-1")
			if got := err != nil; got != tt.err {
				t.Fatalf("error %v, want error %v", err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), "tok-1") {
				t.Errorf("error %q carries the token", err)
			}
			if reason != tt.want {
				t.Errorf("reason %q, want %q", reason, tt.want)
			}
			if tt.name == "ok" {
				want := resolver.Profile{UserID: "alice", Verified: true, HasVerified: true, Roles: []string{"admin"}, Claims: map[string]string{"email": "a@x"}}
				if diff := cmp.Diff(want, p); diff != "" {
					t.Errorf("profile (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestFetchHang(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	src, err := profile.New(profile.Options{Issuer: "https://idp", UserinfoURL: srv.URL, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	id := resolver.Identity{UserID: "alice", Issuer: "https://idp"}
	if _, _, err := src.Fetch(context.Background(), &id, "tok"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want a deadline", err)
	}
}

func TestSet(t *testing.T) {
	srv := stacktest.New("proj-1", "ssk_secret")
	t.Cleanup(srv.Close)
	set := profile.NewSet(stackSource(t, srv, func(o *profile.Options) { o.Always = true }))
	if !set.Always(srv.Issuer(false)) || set.Always("https://other") {
		t.Error("Always")
	}
	id := resolver.Identity{UserID: "u", Issuer: "https://other"}
	if _, _, err := set.Profile(context.Background(), &id, "tok"); !errors.Is(err, resolver.ErrNoProfileSource) {
		t.Errorf("other issuer: error %v, want ErrNoProfileSource", err)
	}
}

func TestNewRejects(t *testing.T) {
	for name, opts := range map[string]profile.Options{
		"no issuer":         {UserinfoURL: "https://idp/userinfo"},
		"no source":         {Issuer: "https://idp"},
		"both":              {Issuer: "https://idp", UserinfoURL: "https://idp/userinfo", StackProjectID: "p", StackSecretServerKey: "k"},
		"stack without key": {Issuer: "https://idp", StackProjectID: "p"},
		"plain http":        {Issuer: "https://idp", UserinfoURL: "http://idp.example/userinfo"},
	} {
		if _, err := profile.New(opts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
