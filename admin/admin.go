// Package admin owns the admin HTTP API of SPEC §4: creating, listing and
// revoking cookie sessions, and revoking JWTs by jti or per user. It speaks
// JSON, checks the bearer token in constant time and answers every problem
// with {"error":"<code>","message":"…"} and a fitting 4xx.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/authresolver/authresolver/session"
)

// MaxBodyBytes bounds an admin request body.
const MaxBodyBytes = 64 << 10

// Sessions creates and lists cookie sessions.
type Sessions interface {
	// Create returns a *session.InvalidError for bad params. Its Created
	// names the sessions the per-user cap ended (Evicted), also when it
	// returns an error after ending them.
	Create(ctx context.Context, p session.Params) (session.Created, error)
	List(ctx context.Context, userID string) ([]session.Session, error)
}

// SessionRevoker ends cookie sessions.
type SessionRevoker interface {
	// Revoke returns an error matching session.ErrNotFound when there is
	// no such session.
	Revoke(ctx context.Context, id string) (session.Revoked, error)
	RevokeUser(ctx context.Context, userID string) (int, error)
}

// TokenRevoker records JWT revocations. An empty issuer means every issuer.
type TokenRevoker interface {
	RevokeToken(ctx context.Context, issuer, jti string, until time.Time) error
	RevokeUserTokens(ctx context.Context, issuer, userID string, before time.Time, keep time.Duration) error
}

var (
	_ Sessions       = (*session.RedisStore)(nil)
	_ SessionRevoker = (*session.RedisStore)(nil)
	_ TokenRevoker   = (*session.RedisStore)(nil)
	_ Sessions       = (*session.MemoryStore)(nil)
	_ SessionRevoker = (*session.MemoryStore)(nil)
	_ TokenRevoker   = (*session.MemoryStore)(nil)
)

// Options configure the API. Sessions, Revoker and Tokens are required (a
// session store is all three).
type Options struct {
	Sessions Sessions
	Revoker  SessionRevoker
	Tokens   TokenRevoker
	// Token is the bearer token every call must present. Empty refuses
	// every call (401): the admin API is off unless a token is set.
	Token string
	// Cookie is the session cookie's name, for the ready Set-Cookie value.
	Cookie string
	// Lifetime bounds a session's ttl (and is its default).
	Lifetime time.Duration
	// RevocationTTL is how long a revocation is kept when the caller does
	// not say when the token expires: the longest token lifetime in use.
	RevocationTTL time.Duration
	// Leeway is the largest clock skew any verifier allows on exp. The
	// verifier accepts a token until exp + leeway, so every JWT revocation
	// is kept that much longer.
	Leeway time.Duration
	// Invalidate drops cached decisions carrying a tag (resolver.SessionTag
	// and friends) on every replica. Nil: nothing is cached.
	Invalidate func(ctx context.Context, tag string) error
	Logger     *slog.Logger
	Now        func() time.Time
}

// API serves the admin routes.
type API struct {
	o         Options
	tokenHash [sha256.Size]byte
}

// New returns the API. It does no I/O.
func New(o Options) *API {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Cookie == "" {
		o.Cookie = "session"
	}
	return &API{o: o, tokenHash: sha256.Sum256([]byte(o.Token))}
}

// Mount adds the /v1 routes to r.
func (a *API) Mount(r chi.Router) {
	r.Route("/v1", func(r chi.Router) {
		r.Use(a.authenticate)
		r.Post("/sessions", a.createSession)
		r.Delete("/sessions/{session_id}", a.revokeSession)
		r.Get("/users/{user_id}/sessions", a.listSessions)
		r.Delete("/users/{user_id}/sessions", a.revokeUserSessions)
		r.Post("/revocations", a.revoke)
		r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusNotFound, "not_found", "no such admin call")
		})
		r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "this admin call does not take that method")
		})
	})
}

// authenticate compares the bearer token in constant time. Hashing both
// sides first keeps the comparison independent of the token's length.
func (a *API) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.o.Token == "" {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeError(w, http.StatusUnauthorized, "admin_disabled", "the admin API is off: set AUTHRESOLVER_ADMIN_TOKEN")
			return
		}
		got, ok := bearerToken(r.Header.Get("Authorization"))
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], a.tokenHash[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong admin token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func bearerToken(v string) (string, bool) {
	const scheme = "bearer "
	if len(v) <= len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", false
	}
	return strings.TrimSpace(v[len(scheme):]), true
}

// invalidate tells the caches about a revocation that has been stored.
func (a *API) invalidate(ctx context.Context, tag string) error {
	if a.o.Invalidate == nil {
		return nil
	}
	if err := a.o.Invalidate(ctx, tag); err != nil {
		a.o.Logger.LogAttrs(ctx, slog.LevelError, "revocation stored but not broadcast", slog.String("error", err.Error()))
		return &apiError{http.StatusServiceUnavailable, "invalidation_failed",
			"the revocation is stored, but cached decisions could not be dropped everywhere; they end within the cache TTL"}
	}
	return nil
}

// pathParam returns the path parameter name percent-decoded exactly once,
// so that alice@example.com, alice%40example.com and a/b sent as a%2Fb all
// name what the client meant. chi routes on r.URL.RawPath when the request
// has one (its path holds an escape that the decoded path would not get
// back, such as %2F or %40), and the parameter is then still escaped;
// otherwise it routes on the already decoded r.URL.Path.
func pathParam(r *http.Request, name string) (string, error) {
	v := chi.URLParam(r, name)
	if r.URL.RawPath == "" {
		return v, nil
	}
	d, err := url.PathUnescape(v)
	if err != nil {
		return "", &apiError{http.StatusBadRequest, "invalid_" + name, name + " is not validly percent-encoded"}
	}
	return d, nil
}

// apiError is an answer to the client, apart from the cause that is logged.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

// decode reads one JSON object into v: JSON only, size-limited, no unknown
// fields, nothing after the object.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return &apiError{http.StatusUnsupportedMediaType, "unsupported_media_type", "send application/json"}
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("more than one JSON value")
	}
	var tooLarge *http.MaxBytesError
	var ae *apiError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &tooLarge):
		return &apiError{http.StatusRequestEntityTooLarge, "request_too_large", fmt.Sprintf("the body is larger than %d bytes", MaxBodyBytes)}
	case errors.Is(err, io.EOF):
		return &apiError{http.StatusBadRequest, "invalid_json", "the body is empty"}
	}
	return &apiError{http.StatusBadRequest, "invalid_json", jsonProblem(err)}
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return fmt.Sprintf("field %q has the wrong type", typeErr.Field)
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("malformed JSON at byte %d", syntaxErr.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "malformed JSON"
}

// fail answers err: an apiError as it says, an invalid input as 400,
// anything else as 503 (the store is unreachable).
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	var inv *session.InvalidError
	switch {
	case errors.As(err, &ae):
		if ae.status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		writeError(w, ae.status, ae.code, ae.msg)
	case errors.As(err, &inv):
		writeError(w, http.StatusBadRequest, "invalid_"+inv.Field, inv.Field+" "+inv.Problem)
	case errors.Is(err, session.ErrInvalid):
		writeError(w, http.StatusBadRequest, "invalid_request", "invalid input")
	default:
		a.o.Logger.LogAttrs(r.Context(), slog.LevelError, "admin call failed",
			slog.String("method", r.Method), slog.String("route", chi.RouteContext(r.Context()).RoutePattern()),
			slog.String("error", err.Error()))
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the session store cannot be reached")
	}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{code, msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// jsonString decodes a JSON string, for custom field types.
func jsonString(b []byte, s *string) error {
	if err := json.Unmarshal(b, s); err != nil {
		return &apiError{http.StatusBadRequest, "invalid_json", "expected a JSON string"}
	}
	return nil
}
