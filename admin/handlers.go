package admin

import (
	"context"
	"errors"
	"net/http"
	"time"

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
	SessionID string `json:"session_id"`
	Cookie    string `json:"cookie"`
	// ExpiresAt is when the session ends unless it is used (the idle
	// deadline, or the absolute expiry if sooner), as in listings; each
	// use moves it on, up to AbsoluteExpiresAt.
	ExpiresAt time.Time `json:"expires_at"`
	// AbsoluteExpiresAt is when the session ends however active, and when
	// the cookie expires.
	AbsoluteExpiresAt time.Time `json:"absolute_expires_at"`
	Handle            string    `json:"handle"`
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
	c, err := a.o.Sessions.Create(r.Context(), p)
	a.dropEvicted(r.Context(), c.Evicted)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// The cookie lives as long as the session can: the idle deadline moves
	// on with every use, and a cookie that ended at the first one would
	// log an active user out.
	cookie := &http.Cookie{
		Name: a.o.Cookie, Value: string(c.ID), Path: "/",
		Expires: c.AbsoluteExpiresAt, MaxAge: int(c.AbsoluteExpiresAt.Sub(a.o.Now()) / time.Second),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode,
	}
	writeJSON(w, http.StatusCreated, createResponse{
		SessionID: string(c.ID), Cookie: cookie.String(), Handle: c.Handle,
		ExpiresAt: c.ExpiresAt.UTC(), AbsoluteExpiresAt: c.AbsoluteExpiresAt.UTC(),
	})
}

// dropEvicted drops the cached decisions of sessions that the per-user cap
// ended. A failure is logged (by invalidate), not answered: the new session
// exists and this answer is the only place its ID is shown, and the evicted
// sessions' cached decisions end within the cache TTL.
func (a *API) dropEvicted(ctx context.Context, handles []string) {
	for _, h := range handles {
		if err := a.invalidate(ctx, resolver.SessionTag(h)); err != nil {
			return
		}
	}
}

// listSessions: GET /v1/users/{user_id}/sessions → handles, never IDs.
func (a *API) listSessions(w http.ResponseWriter, r *http.Request) {
	user, err := a.userParam(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	list, err := a.o.Sessions.List(r.Context(), user)
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

// userParam returns the valid {user_id} of the path.
func (a *API) userParam(r *http.Request) (string, error) {
	user, err := pathParam(r, "user_id")
	if err != nil {
		return "", err
	}
	return user, session.ValidateUserID(user)
}

// revokeSession: DELETE /v1/sessions/{session_id} → 204. Revoking is
// idempotent: a session already revoked (or never created) answers 204
// too, and its cached decisions are dropped again, so that a call that
// failed with 503 invalidation_failed can be retried.
func (a *API) revokeSession(w http.ResponseWriter, r *http.Request) {
	raw, err := pathParam(r, "session_id")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	id, err := session.ParseID(raw)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	_, err = a.o.Revoker.Revoke(r.Context(), raw)
	if err == nil || errors.Is(err, session.ErrNotFound) {
		err = a.invalidate(r.Context(), resolver.SessionTag(id.Handle()))
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// revokeUserSessions: DELETE /v1/users/{user_id}/sessions → 204, also when
// the user has no sessions left (a retry drops cached decisions again).
func (a *API) revokeUserSessions(w http.ResponseWriter, r *http.Request) {
	user, err := a.userParam(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	_, err = a.o.Revoker.RevokeUser(r.Context(), user)
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
	// Issuer limits the revocation to that issuer's tokens; without it,
	// the jti or user is revoked for every issuer.
	Issuer *string `json:"issuer"`
}

// revoke: POST /v1/revocations {"jti"} or {"user_id","before"?}, each with
// an optional "issuer" → 204.
func (a *API) revoke(w http.ResponseWriter, r *http.Request) {
	var req revocationRequest
	if err := decode(w, r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	var issuer string
	if req.Issuer != nil {
		issuer = *req.Issuer
		if err := session.ValidateIssuer(issuer); err != nil {
			a.fail(w, r, err)
			return
		}
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
		err = a.revokeToken(r, issuer, req, now)
	default:
		err = a.revokeUserTokens(r, issuer, req, now)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// revokeToken keeps the jti revoked until the token's expiry (given, or
// now + RevocationTTL) plus the leeway: the verifier accepts it until then.
func (a *API) revokeToken(r *http.Request, issuer string, req revocationRequest, now time.Time) error {
	if err := session.ValidateJTI(req.JTI); err != nil {
		return err
	}
	exp := now.Add(a.o.RevocationTTL)
	if req.ExpiresAt != nil {
		exp = *req.ExpiresAt
	}
	until := exp.Add(a.o.Leeway)
	if !until.After(now) {
		// No verifier accepts the token any more; nothing to keep.
		return nil
	}
	if err := a.o.Tokens.RevokeToken(r.Context(), issuer, req.JTI, until); err != nil {
		return err
	}
	tag := resolver.TokenTag(req.JTI)
	if issuer != "" {
		tag = resolver.IssuerTokenTag(issuer, req.JTI)
	}
	return a.invalidate(r.Context(), tag)
}

// revokeUserTokens keeps the cut-off for RevocationTTL plus the leeway
// after it: a token issued just before it lives at most RevocationTTL and
// is accepted for the leeway after that.
func (a *API) revokeUserTokens(r *http.Request, issuer string, req revocationRequest, now time.Time) error {
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
	if err := a.o.Tokens.RevokeUserTokens(r.Context(), issuer, req.UserID, before, a.o.RevocationTTL+a.o.Leeway); err != nil {
		return err
	}
	tag := resolver.UserTokensTag(req.UserID)
	if issuer != "" {
		tag = resolver.IssuerUserTokensTag(issuer, req.UserID)
	}
	return a.invalidate(r.Context(), tag)
}
