// Package resolver owns the forward-auth decision: it extracts the one
// credential a request carries (Bearer JWT, configured token header or session
// cookie), asks the TokenVerifier or SessionStore who the caller is, applies
// per-route requirements and maps the outcome to the status code and headers
// that NGINX, Traefik, Caddy and Envoy act on.
//
// The words of the domain live here (Identity, Reason, Requirement) together
// with the small interfaces the resolver needs; the jwks, session and cache
// packages implement them.
package resolver

import (
	"context"
	"net/http"
	"time"
)

// Credential kinds, written to the Credential identity header.
const (
	CredentialJWT     = "jwt"
	CredentialSession = "session"
)

// Identity is who a valid credential says the caller is.
type Identity struct {
	Credential      string // CredentialJWT or CredentialSession
	UserID          string
	Issuer          string // JWT only
	SessionHandle   string // session only: a public handle, never the session ID
	TokenID         string // JWT only: the jti claim, empty when absent
	Anonymous       bool
	Verified        bool
	Roles           []string
	Scopes          []string
	AMR             []string
	AuthenticatedAt time.Time // auth_time, else iat (JWT); authentication time (session)
	IssuedAt        time.Time // iat (JWT); creation time (session)
	ExpiresAt       time.Time
	// Claims holds the values of the configured extra claims (claim name →
	// value as text), for the claim headers. Nil when none are configured.
	Claims map[string]string
}

// Reason is the code of a denial. It is written to the <prefix>Error header
// and to logs and metrics, so it never carries request data.
type Reason string

// Denial reasons for a missing or unacceptable credential (answered 401).
const (
	ReasonNone              Reason = ""
	ReasonMissingCredential Reason = "missing_credential"
	ReasonMalformedHeader   Reason = "malformed_authorization"
	ReasonMalformedToken    Reason = "malformed_token"
	ReasonTokenTooLarge     Reason = "token_too_large"
	ReasonAlgorithm         Reason = "unsupported_algorithm"
	ReasonUnknownKey        Reason = "unknown_key"
	ReasonSignature         Reason = "invalid_signature"
	ReasonUnknownIssuer     Reason = "unknown_issuer"
	ReasonAudience          Reason = "invalid_audience"
	ReasonTokenType         Reason = "invalid_token_type"
	ReasonMissingClaim      Reason = "missing_claim"
	ReasonInvalidClaim      Reason = "invalid_claim"
	ReasonExpired           Reason = "token_expired"
	ReasonNotYetValid       Reason = "token_not_yet_valid"
	ReasonIssuedInFuture    Reason = "token_issued_in_future"
	ReasonTokenRevoked      Reason = "token_revoked"
	ReasonMalformedSession  Reason = "malformed_session"
	ReasonSessionNotFound   Reason = "session_not_found"
	ReasonSessionExpired    Reason = "session_expired"
)

// Denial reasons for a valid credential that fails a requirement (answered 403).
const (
	ReasonInsufficientRole           Reason = "insufficient_role"
	ReasonInsufficientScope          Reason = "insufficient_scope"
	ReasonInsufficientVerification   Reason = "insufficient_verification"
	ReasonInsufficientAuthentication Reason = "insufficient_authentication" // anonymous user, anonymous=false
	ReasonInvalidRequirement         Reason = "invalid_requirement"         // the proxy's requirement does not parse: fail closed
)

// TokenVerifier verifies JWT access tokens.
type TokenVerifier interface {
	// Verify returns the identity token carries, or a non-empty Reason when the
	// token is not acceptable. It returns an error only when it cannot decide
	// for a technical reason (no usable keys); a bad token is never an error.
	Verify(ctx context.Context, token string) (Identity, Reason, error)
}

// SessionStore looks up cookie sessions.
type SessionStore interface {
	// Lookup returns the identity of the live session id, or
	// ReasonSessionNotFound / ReasonSessionExpired / ReasonMalformedSession.
	// It returns an error only when the store cannot be reached.
	Lookup(ctx context.Context, id string) (Identity, Reason, error)
}

// LoginRedirector tells where to send a browser that has no valid
// credential, on routes with a login requirement.
type LoginRedirector interface {
	// Location returns the login URL for r, the auth request a proxy sent,
	// and false when r is not a browser navigation or the URL it asked for
	// must not be returned to (the answer is then the plain 401).
	Location(r *http.Request) (string, bool)
}

// RevocationChecker answers whether a verified JWT has been revoked, by its
// jti or by a per-user cut-off, in one round trip.
type RevocationChecker interface {
	// TokenRevoked returns an error only when the store cannot be reached.
	TokenRevoked(ctx context.Context, id Identity) (bool, error)
}

// Asserter signs the identity assertion of an allow (<prefix>Assertion).
type Asserter interface {
	// Assert returns a signed assertion of id, valid until exp. It returns
	// an error only if it cannot sign; the answer is then a 503.
	Assert(id *Identity, exp time.Time) (string, error)
}
