package admin_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/authresolver/authresolver/admin"
	"github.com/authresolver/authresolver/internal/redistest"
	"github.com/authresolver/authresolver/resolver"
	"github.com/authresolver/authresolver/session"
)

const token = "s3cret-admin-token"

// store is what the tests need of both session stores.
type store interface {
	admin.Sessions
	admin.SessionRevoker
	admin.TokenRevoker
	resolver.SessionStore
	resolver.RevocationChecker
}

// stores returns the stores every test runs against: in memory, and Redis on
// a real redis-server.
func stores(_ *testing.T) map[string]func(t *testing.T, o session.Options) store {
	return map[string]func(t *testing.T, o session.Options) store{
		"memory": func(_ *testing.T, o session.Options) store { return session.NewMemoryStore(o) },
		"redis": func(t *testing.T, o session.Options) store {
			srv := redistest.Start(t)
			client, err := session.NewRedisClient(session.RedisConfig{URL: srv.URL()})
			if err != nil {
				t.Fatal(err)
			}
			s := session.NewRedisStore(client, o)
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
}

// server serves the admin API over s with o (Sessions, Revoker, Tokens, the
// token and unset limits filled in), and /resolve over the same store.
func server(t *testing.T, s store, o admin.Options) *httptest.Server {
	t.Helper()
	r := chi.NewRouter()
	admin.New(withDefaults(s, o)).Mount(r)
	r.Handle("/resolve", resolver.New(resolver.Options{Sessions: s, SessionCookie: "session", Revocations: s}))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

func withDefaults(s store, o admin.Options) admin.Options {
	o.Sessions, o.Revoker, o.Tokens = s, s, s
	if o.Token == "" {
		o.Token = token
	}
	if o.Lifetime == 0 {
		o.Lifetime = 24 * time.Hour
	}
	if o.RevocationTTL == 0 {
		o.RevocationTTL = time.Hour
	}
	return o
}

type reply struct {
	Status int
	Error  string
	Body   map[string]any
}

func call(t *testing.T, srv *httptest.Server, method, path, auth, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	rep := reply{Status: resp.StatusCode}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &rep.Body); err != nil {
			t.Fatalf("%s %s: body is not JSON: %q", method, path, raw)
		}
		rep.Error, _ = rep.Body["error"].(string)
		if rep.Error != "" {
			if msg, _ := rep.Body["message"].(string); msg == "" {
				t.Errorf("%s %s: error %q without a message", method, path, rep.Error)
			}
		}
	}
	return rep
}

func resolve(t *testing.T, srv *httptest.Server, hdr string, val string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/resolve", nil)
	req.Header.Set(hdr, val)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

const bearer = "Bearer " + token

func TestAdminErrors(t *testing.T) {
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			srv := server(t, newStore(t, session.Options{}), admin.Options{})
			big := `{"user_id":"u","attributes":{"a":"` + strings.Repeat("x", admin.MaxBodyBytes) + `"}}`
			tests := []struct {
				name                     string
				method, path, auth, body string
				wantStatus               int
				wantError                string
			}{
				{"no token", "POST", "/v1/sessions", "", `{"user_id":"u"}`, 401, "unauthorized"},
				{"wrong token", "POST", "/v1/sessions", "Bearer nope", `{"user_id":"u"}`, 401, "unauthorized"},
				{"token as basic", "POST", "/v1/sessions", "Basic " + token, `{"user_id":"u"}`, 401, "unauthorized"},
				{"token prefix", "POST", "/v1/sessions", bearer[:len(bearer)-1], `{"user_id":"u"}`, 401, "unauthorized"},
				{"malformed JSON", "POST", "/v1/sessions", bearer, `{"user_id":`, 400, "invalid_json"},
				{"empty body", "POST", "/v1/sessions", bearer, ``, 400, "invalid_json"},
				{"two objects", "POST", "/v1/sessions", bearer, `{"user_id":"u"}{}`, 400, "invalid_json"},
				{"unknown field", "POST", "/v1/sessions", bearer, `{"user_id":"u","admin":true}`, 400, "invalid_json"},
				{"wrong type", "POST", "/v1/sessions", bearer, `{"user_id":5}`, 400, "invalid_json"},
				{"oversized body", "POST", "/v1/sessions", bearer, big, 413, "request_too_large"},
				{"missing user id", "POST", "/v1/sessions", bearer, `{}`, 400, "invalid_user_id"},
				{"control char in user id", "POST", "/v1/sessions", bearer, `{"user_id":"a\nb"}`, 400, "invalid_user_id"},
				{"bad ttl", "POST", "/v1/sessions", bearer, `{"user_id":"u","ttl":"forever"}`, 400, "invalid_ttl"},
				{"ttl too long", "POST", "/v1/sessions", bearer, `{"user_id":"u","ttl":"100000h"}`, 400, "invalid_ttl"},
				{"ttl too short", "POST", "/v1/sessions", bearer, `{"user_id":"u","ttl":"1s"}`, 400, "invalid_ttl"},
				{"too many roles", "POST", "/v1/sessions", bearer, `{"user_id":"u","roles":[` + strings.Repeat(`"r",`, 100) + `"r"]}`, 400, "invalid_roles"},
				{"comma in role", "POST", "/v1/sessions", bearer, `{"user_id":"u","roles":["a,b"]}`, 400, "invalid_roles"},
				{"malformed session id", "DELETE", "/v1/sessions/abc", bearer, ``, 400, "invalid_session_id"},
				{"session id with an escaped slash", "DELETE", "/v1/sessions/" + string(session.NewID())[:40] + "%2F", bearer, ``, 400, "invalid_session_id"},
				{"user id too long", "GET", "/v1/users/" + strings.Repeat("u", session.MaxUserIDBytes+1) + "/sessions", bearer, ``, 400, "invalid_user_id"},
				{"escaped control char in user id", "GET", "/v1/users/a%0Ab/sessions", bearer, ``, 400, "invalid_user_id"},
				{"revocation: empty issuer", "POST", "/v1/revocations", bearer, `{"jti":"j","issuer":""}`, 400, "invalid_issuer"},
				{"revocation: control char in issuer", "POST", "/v1/revocations", bearer, `{"user_id":"u","issuer":"a\tb"}`, 400, "invalid_issuer"},
				{"revocation: issuer not a string", "POST", "/v1/revocations", bearer, `{"user_id":"u","issuer":1}`, 400, "invalid_json"},
				{"revocation: neither", "POST", "/v1/revocations", bearer, `{}`, 400, "invalid_request"},
				{"revocation: both", "POST", "/v1/revocations", bearer, `{"jti":"j","user_id":"u"}`, 400, "invalid_request"},
				{"revocation: future before", "POST", "/v1/revocations", bearer, `{"user_id":"u","before":"2999-01-01T00:00:00Z"}`, 400, "invalid_before"},
				{"revocation: bad time", "POST", "/v1/revocations", bearer, `{"user_id":"u","before":"yesterday"}`, 400, "invalid_json"},
				{"unknown call", "GET", "/v1/nope", bearer, ``, 404, "not_found"},
				{"wrong method", "PUT", "/v1/sessions", bearer, ``, 405, "method_not_allowed"},
			}
			for _, tt := range tests {
				got := call(t, srv, tt.method, tt.path, tt.auth, tt.body)
				if got.Status != tt.wantStatus || got.Error != tt.wantError {
					t.Errorf("%s: got %d %q, want %d %q", tt.name, got.Status, got.Error, tt.wantStatus, tt.wantError)
				}
			}
		})
	}
}

func TestAdminDisabledWithoutToken(t *testing.T) {
	r := chi.NewRouter()
	o := withDefaults(session.NewMemoryStore(session.Options{}), admin.Options{})
	o.Token = ""
	admin.New(o).Mount(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	for _, auth := range []string{"", "Bearer ", "Bearer x"} {
		got := call(t, srv, "POST", "/v1/sessions", auth, `{"user_id":"u"}`)
		if got.Status != 401 || got.Error != "admin_disabled" {
			t.Errorf("auth %q: got %d %q, want 401 admin_disabled", auth, got.Status, got.Error)
		}
	}
}

func TestAdminSessionLifecycle(t *testing.T) {
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			srv := server(t, newStore(t, session.Options{}), admin.Options{})
			created := call(t, srv, "POST", "/v1/sessions", bearer, `{"user_id":"alice","ttl":"1h","verified":true,"roles":["admin"],"amr":["pwd"],"attributes":{"email":"a@example.com"}}`)
			if created.Status != 201 {
				t.Fatalf("create: %d %v", created.Status, created.Body)
			}
			id, _ := created.Body["session_id"].(string)
			cookie, _ := created.Body["cookie"].(string)
			handle, _ := created.Body["handle"].(string)
			if _, err := session.ParseID(id); err != nil {
				t.Fatalf("session_id is not a session ID: %v", err)
			}
			for _, attr := range []string{"session=" + id, "Path=/", "HttpOnly", "Secure", "SameSite=Lax", "Max-Age="} {
				if !strings.Contains(cookie, attr) {
					t.Errorf("cookie %q lacks %q", cookie, attr)
				}
			}
			if handle == "" || strings.Contains(id, handle) {
				t.Errorf("handle %q must be set and not part of the ID", handle)
			}
			second := call(t, srv, "POST", "/v1/sessions", bearer, `{"user_id":"alice"}`)
			id2, _ := second.Body["session_id"].(string)

			list := call(t, srv, "GET", "/v1/users/alice/sessions", bearer, "")
			raw, _ := json.Marshal(list.Body)
			if list.Status != 200 || strings.Contains(string(raw), id) || !strings.Contains(string(raw), handle) {
				t.Errorf("list: %d %s: want the handle and never the ID", list.Status, raw)
			}
			if n := len(list.Body["sessions"].([]any)); n != 2 {
				t.Errorf("list: %d sessions, want 2", n)
			}

			if got := resolve(t, srv, "Cookie", "session="+id); got != 200 {
				t.Fatalf("resolve before revoke = %d, want 200", got)
			}
			if got := call(t, srv, "DELETE", "/v1/sessions/"+id, bearer, ""); got.Status != 204 {
				t.Fatalf("revoke = %d %v", got.Status, got.Body)
			}
			if got := resolve(t, srv, "Cookie", "session="+id); got != 401 {
				t.Errorf("resolve after revoke = %d, want 401", got)
			}
			if got := call(t, srv, "DELETE", "/v1/sessions/"+id, bearer, ""); got.Status != 204 {
				t.Errorf("second revoke = %d, want 204 (revoking is idempotent)", got.Status)
			}
			if got := resolve(t, srv, "Cookie", "session="+id2); got != 200 {
				t.Fatalf("other session = %d, want 200", got)
			}
			if got := call(t, srv, "DELETE", "/v1/users/alice/sessions", bearer, ""); got.Status != 204 {
				t.Fatalf("revoke all = %d %v", got.Status, got.Body)
			}
			if got := resolve(t, srv, "Cookie", "session="+id2); got != 401 {
				t.Errorf("resolve after revoke-all = %d, want 401", got)
			}
			empty := call(t, srv, "GET", "/v1/users/alice/sessions", bearer, "")
			if diff := cmp.Diff(map[string]any{"sessions": []any{}}, empty.Body); diff != "" {
				t.Errorf("list after revoke-all (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAdminTokenRevocations(t *testing.T) {
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			s := newStore(t, session.Options{})
			srv := server(t, s, admin.Options{})
			ctx := t.Context()
			now := time.Now()
			tok := resolver.Identity{Credential: resolver.CredentialJWT, UserID: "bob", TokenID: "jti-1", IssuedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)}
			other := tok
			other.TokenID = "jti-2"
			if got := call(t, srv, "POST", "/v1/revocations", bearer, `{"jti":"jti-1"}`); got.Status != 204 {
				t.Fatalf("revoke jti = %d %v", got.Status, got.Body)
			}
			for _, c := range []struct {
				id   resolver.Identity
				want bool
			}{{tok, true}, {other, false}} {
				if got, err := s.TokenRevoked(ctx, c.id); err != nil || got != c.want {
					t.Errorf("TokenRevoked(%s) = %v, %v; want %v", c.id.TokenID, got, err, c.want)
				}
			}
			if got := call(t, srv, "POST", "/v1/revocations", bearer, `{"user_id":"bob"}`); got.Status != 204 {
				t.Fatalf("revoke user = %d %v", got.Status, got.Body)
			}
			later := other
			later.IssuedAt = now.Add(time.Minute)
			for _, c := range []struct {
				id   resolver.Identity
				want bool
			}{{other, true}, {later, false}} {
				if got, err := s.TokenRevoked(ctx, c.id); err != nil || got != c.want {
					t.Errorf("TokenRevoked(iat %s) = %v, %v; want %v", c.id.IssuedAt, got, err, c.want)
				}
			}
		})
	}
}
