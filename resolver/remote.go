package resolver

import (
	"context"
	"errors"
)

// CredentialOpaque is the Credential header value of a bearer token that is
// not a JWT and was accepted by introspection (SPEC §5).
const CredentialOpaque = "opaque"

// Denial reasons of the identity provider's own answers (answered 401).
const (
	// ReasonTokenInactive: introspection answered active: false.
	ReasonTokenInactive Reason = "token_inactive"
	// ReasonTokenRejected: the profile source refused the token (401, 403,
	// 404: signed out, user deleted).
	ReasonTokenRejected Reason = "token_rejected"
)

// Introspector asks an RFC 7662 endpoint about opaque bearer tokens.
type Introspector interface {
	// Introspect returns the identity of an active token, or a Reason
	// (ReasonTokenInactive, ReasonExpired, ReasonAudience, …). It returns
	// an error when the endpoint cannot be reached, is slow, or answers
	// anything but a well-formed RFC 7662 response: never an allow.
	Introspect(ctx context.Context, token string) (Identity, Reason, error)
}

// Profile is what a profile source (OIDC UserInfo, Stack Auth users/me)
// says about the user of a verified token. Fields the source did not send
// are left as they are in the token's identity.
type Profile struct {
	UserID       string // the source's subject; must equal the token's
	Verified     bool
	HasVerified  bool
	Anonymous    bool
	HasAnonymous bool
	Roles        []string // nil: not sent
	// Claims are the profile's members as text (as for JWT claims), for
	// the claim headers; only the configured names.
	Claims map[string]string
}

// ProfileSource fetches fresh profiles from the identity provider.
type ProfileSource interface {
	// Profile returns the profile of the user of token, whose verified
	// identity is id, or ReasonTokenRejected when the provider refuses the
	// token. It returns ErrNoProfileSource when id's issuer has none, and
	// another error when the provider cannot be reached or answers
	// anything else.
	Profile(ctx context.Context, id *Identity, token string) (Profile, Reason, error)
	// Always reports whether every token of issuer must have its profile
	// fetched ("profile": "always"), whatever the route asks.
	Always(issuer string) bool
}

// ErrNoProfileSource is returned by ProfileSource.Profile for a token whose
// issuer has no profile source configured.
var ErrNoProfileSource = errors.New("resolver: the token's issuer has no profile source")
