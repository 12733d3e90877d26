// Package stacktest is Stack Auth's API on httptest, following the
// documented contract to the letter, for tests of the profile source and
// the Stack Auth preset (Stack's own server cannot run here):
//
//   - GET /api/v1/users/me needs all four headers x-stack-access-type:
//     server, x-stack-project-id, x-stack-secret-server-key and
//     x-stack-access-token, and answers 401 otherwise; 200 carries the
//     documented user fields (id, primary_email, primary_email_verified,
//     display_name, is_anonymous, signed_up_at_millis, …).
//   - GET /api/v1/projects/<id>/.well-known/jwks.json publishes the
//     regular users' signing key, and with ?include_anonymous=true the
//     anonymous users' key too.
//   - Mint issues ES256 access tokens in Stack's format: iss
//     <url>/api/v1/projects/<id> and aud <id>, or for anonymous users iss
//     <url>/api/v1/projects-anonymous-users/<id> and aud <id>:anon.
package stacktest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authresolver/authresolver/jwks/jwkstest"
)

// User is a Stack Auth user as users/me describes it.
type User struct {
	ID            string
	Email         string
	EmailVerified bool
	DisplayName   string
	Anonymous     bool
	Restricted    bool
}

// Server is a Stack Auth project's API.
type Server struct {
	*httptest.Server
	ProjectID string
	ServerKey string
	Key       *jwkstest.Key // regular users' signing key
	AnonKey   *jwkstest.Key // anonymous users' signing key

	mu     sync.Mutex
	tokens map[string]User // valid access tokens

	// Status, when not 0, is answered to every users/me call (e.g. 500).
	Status atomic.Int32
	// Calls counts users/me calls that carried valid server credentials.
	Calls atomic.Int64
}

// New starts a Server for projectID with secret server key serverKey.
func New(projectID, serverKey string) *Server {
	s := &Server{
		ProjectID: projectID,
		ServerKey: serverKey,
		Key:       jwkstest.NewKey("ES256", "stack-1"),
		AnonKey:   jwkstest.NewKey("ES256", "stack-anon-1"),
		tokens:    map[string]User{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/users/me", s.me)
	mux.HandleFunc("GET /api/v1/projects/"+projectID+"/.well-known/jwks.json", s.jwks)
	s.Server = httptest.NewServer(mux)
	return s
}

// Issuer returns the iss of the project's regular (anon false) or
// anonymous users' tokens.
func (s *Server) Issuer(anon bool) string {
	if anon {
		return s.URL + "/api/v1/projects-anonymous-users/" + s.ProjectID
	}
	return s.URL + "/api/v1/projects/" + s.ProjectID
}

// Mint issues an access token for u, valid for ttl, that users/me accepts
// until Revoke.
func (s *Server) Mint(u User, ttl time.Duration) string {
	c := jwkstest.Claims(s.Issuer(u.Anonymous), u.ID, ttl)
	c["aud"] = s.ProjectID
	key := s.Key
	if u.Anonymous {
		c["aud"] = s.ProjectID + ":anon"
		key = s.AnonKey
	}
	c["project_id"] = s.ProjectID
	c["branch_id"] = "main"
	c["role"] = "authenticated"
	c["email"] = u.Email
	c["email_verified"] = u.EmailVerified
	c["name"] = u.DisplayName
	c["is_anonymous"] = u.Anonymous
	c["is_restricted"] = u.Restricted
	tok := key.Mint(c)
	s.mu.Lock()
	s.tokens[tok] = u
	s.mu.Unlock()
	return tok
}

// Revoke makes users/me refuse tok (the user signed out).
func (s *Server) Revoke(tok string) {
	s.mu.Lock()
	delete(s.tokens, tok)
	s.mu.Unlock()
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	keys := []*jwkstest.Key{s.Key}
	if r.URL.Query().Get("include_anonymous") == "true" {
		keys = append(keys, s.AnonKey)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(jwkstest.JWKS(keys...))
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	h := r.Header
	if h.Get("X-Stack-Access-Type") != "server" || h.Get("X-Stack-Project-Id") != s.ProjectID ||
		h.Get("X-Stack-Secret-Server-Key") != s.ServerKey || len(h.Values("X-Stack-Access-Token")) != 1 {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"code": "INVALID_ACCESS_TYPE", "error": "server credentials and an access token are required"})
		return
	}
	s.Calls.Add(1)
	if st := s.Status.Load(); st != 0 {
		writeJSON(w, int(st), map[string]any{"error": "unavailable"})
		return
	}
	s.mu.Lock()
	u, ok := s.tokens[h.Get("X-Stack-Access-Token")]
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"code": "UNPARSABLE_ACCESS_TOKEN", "error": "the access token is not valid"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id":                         u.ID,
		"primary_email":              nullable(u.Email),
		"primary_email_verified":     u.EmailVerified,
		"primary_email_auth_enabled": u.Email != "",
		"display_name":               nullable(u.DisplayName),
		"signed_up_at_millis":        1.7e12,
		"last_active_at_millis":      1.7e12,
		"is_anonymous":               u.Anonymous,
		"is_restricted":              u.Restricted,
		"selected_team":              nil,
		"selected_team_id":           nil,
		"profile_image_url":          nil,
		"client_metadata":            map[string]any{"theme": "dark"},
		"client_read_only_metadata":  nil,
		"server_metadata":            nil,
		"has_password":               true,
		"oauth_providers":            []any{},
		"auth_with_email":            u.Email != "",
		"requires_totp_mfa":          false,
	})
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
