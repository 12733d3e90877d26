package admin

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/authresolver/authresolver/resolver"
	"github.com/authresolver/authresolver/session"
)

// duration is a Go duration string in JSON ("1h").
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := jsonString(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &apiError{http.StatusBadRequest, "invalid_ttl", "ttl must be a duration string such as \"1h\""}
	}
	*d = duration(v)
	return nil
}

type createRequest struct {
	UserID     string            `json:"user_id"`
	TTL        *duration         `json:"ttl"`
	Anonymous  bool              `json:"anonymous"`
	Verified   bool              `json:"verified"`
	Roles      []string          `json:"roles"`
	AMR        []string          `json:"amr"`
	Attributes map[string]string `json:"attributes"`
}

type createResponse struct {
	SessionID string    `json:"session_id"`
	Cookie    string    `json:"cookie"`
	ExpiresAt time.Time `json:"expires_at"`
	Handle    string    `json:"handle"`
}

// createSession: POST /v1/sessions → 201 with the session ID and a ready
// Set-Cookie value. The only place a session ID is ever shown.
func (a *API) createSession(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := decode(w, r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	p := session.Params{
		UserID: req.UserID, Anonymous: req.Anonymous, Verified: req.Verified,
		Roles: req.Roles, AMR: req.AMR, Attributes: req.Attributes,
	}
	if req.TTL != nil {
		p.TTL = time.Duration(*req.TTL)
		if err := session.ValidateTTL(p.TTL, a.o.Lifetime); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	c, err := a.o.Store.Create(r.Context(), p)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	cookie := &http.Cookie{
		Name: a.o.Cookie, Value: string(c.ID), Path: "/",
		Expires: c.ExpiresAt, MaxAge: int(c.ExpiresAt.Sub(a.o.Now()).Seconds()),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode,
	}
	writeJSON(w, http.StatusCreated, createResponse{
		SessionID: string(c.ID), Cookie: cookie.String(), ExpiresAt: c.ExpiresAt.UTC(), Handle: c.Handle,
	})
}

// listSessions: GET /v1/users/{user_id}/sessions → handles, never IDs.
func (a *API) listSessions(w http.ResponseWriter, r *http.Request) {
	user := chi.URLParam(r, "user_id")
	if err := session.ValidateUserID(user); err != nil {
		a.fail(w, r, err)
		return
	}
	list, err := a.o.Store.List(r.Context(), user)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if list == nil {
		list = []session.Session{}
	}
	writeJSON(w, http.StatusOK, struct {
		Sessions []session.Session `json:"sessions"`
	}{list})
}

// revokeSession: DELETE /v1/sessions/{session_id} → 204, 404 when unknown.
func (a *API) revokeSession(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "session_id")
	if _, err := session.ParseID(id); err != nil {
		a.fail(w, r, &apiError{http.StatusBadRequest, "invalid_session_id", "not a session ID"})
		return
	}
	rev, err := a.o.Store.Revoke(r.Context(), id)
	if err == nil {
		err = a.invalidate(r.Context(), resolver.SessionTag(rev.Handle))
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// revokeUserSessions: DELETE /v1/users/{user_id}/sessions → 204.
func (a *API) revokeUserSessions(w http.ResponseWriter, r *http.Request) {
	user := chi.URLParam(r, "user_id")
	if err := session.ValidateUserID(user); err != nil {
		a.fail(w, r, err)
		return
	}
	_, err := a.o.Store.RevokeUser(r.Context(), user)
	if err == nil {
		err = a.invalidate(r.Context(), resolver.UserSessionsTag(user))
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type revocationRequest struct {
	JTI       string     `json:"jti"`
	ExpiresAt *time.Time `json:"expires_at"` // with jti: when the token expires (default now + RevocationTTL)
	UserID    string     `json:"user_id"`
	Before    *time.Time `json:"before"` // with user_id: tokens issued before this are revoked (default now)
}

// revoke: POST /v1/revocations {"jti"} or {"user_id","before"?} → 204.
func (a *API) revoke(w http.ResponseWriter, r *http.Request) {
	var req revocationRequest
	if err := decode(w, r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	now := a.o.Now()
	var err error
	switch {
	case (req.JTI == "") == (req.UserID == ""):
		err = &apiError{http.StatusBadRequest, "invalid_request", "give exactly one of jti and user_id"}
	case req.JTI != "" && req.Before != nil:
		err = &apiError{http.StatusBadRequest, "invalid_request", "before goes with user_id, not jti"}
	case req.UserID != "" && req.ExpiresAt != nil:
		err = &apiError{http.StatusBadRequest, "invalid_request", "expires_at goes with jti, not user_id"}
	case req.JTI != "":
		err = a.revokeToken(r, req, now)
	default:
		err = a.revokeUserTokens(r, req, now)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) revokeToken(r *http.Request, req revocationRequest, now time.Time) error {
	if err := session.ValidateJTI(req.JTI); err != nil {
		return err
	}
	until := now.Add(a.o.RevocationTTL)
	if req.ExpiresAt != nil {
		if !req.ExpiresAt.After(now) {
			// An expired token is refused anyway; nothing to keep.
			return nil
		}
		until = *req.ExpiresAt
	}
	if err := a.o.Store.RevokeToken(r.Context(), req.JTI, until); err != nil {
		return err
	}
	return a.invalidate(r.Context(), resolver.TokenTag(req.JTI))
}

func (a *API) revokeUserTokens(r *http.Request, req revocationRequest, now time.Time) error {
	if err := session.ValidateUserID(req.UserID); err != nil {
		return err
	}
	before := now
	if req.Before != nil {
		if req.Before.After(now.Add(time.Minute)) {
			return &apiError{http.StatusBadRequest, "invalid_before", "before is in the future"}
		}
		before = *req.Before
	}
	if err := a.o.Store.RevokeUserTokens(r.Context(), req.UserID, before, a.o.RevocationTTL); err != nil {
		return err
	}
	return a.invalidate(r.Context(), resolver.UserTokensTag(req.UserID))
}
