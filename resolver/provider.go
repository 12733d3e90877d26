package resolver

import (
	"context"
	"errors"
)

// tierProfile labels look-ups of cached profile verdicts.
const tierProfile = "profile"

// verifyBearer decides who a bearer token belongs to: a JWT is verified
// locally; a token that is not a JWS compact serialization is
// introspected when an Introspector is configured.
func (h *Handler) verifyBearer(ctx context.Context, tok string) (Identity, Reason, error) {
	switch {
	case h.opts.Introspector != nil && !wellFormedJWS(tok):
		return h.opts.Introspector.Introspect(ctx, tok)
	case h.opts.Tokens == nil:
		// JWT is not configured: a Bearer token cannot be accepted, and it
		// is still the credential that decides (never skipped for a cookie).
		return Identity{}, ReasonUnknownIssuer, nil
	}
	return h.opts.Tokens.Verify(ctx, tok)
}

// wantsProfile reports whether the answer for v needs the user's fresh
// profile: a verified JWT, on a route with profile=true or of an issuer
// whose profile is always fetched. Sessions and introspected tokens are
// already answered by the server that holds them.
func (h *Handler) wantsProfile(req *Requirement, v *Verdict) bool {
	if h.opts.Profiles == nil || v.Reason != ReasonNone || v.Identity.Credential != CredentialJWT {
		return false
	}
	return req.Profile || h.opts.Profiles.Always(v.Identity.Issuer)
}

// profileKey is the cache key of cred's profile verdict: apart from its
// plain verdict, so that one route's profile=true never changes what a
// route without it gets.
func (k keyer) profileKey(c Credential) Key {
	key := k.key(c)
	key.A ^= 0x9e3779b97f4a7c15 // the keys stay secret: the seeds are
	return key
}

// withProfile returns v with its user's profile merged in; or v itself
// and, as a requirement error, ErrNoProfileSource when the token's issuer
// has no profile source: the route asks what cannot be given (403
// invalid_requirement).
func (h *Handler) withProfile(ctx context.Context, cred Credential, v *Verdict) (*Verdict, error, error) {
	pv, err := h.profiled(ctx, cred)
	if errors.Is(err, ErrNoProfileSource) {
		return v, err, nil
	}
	return pv, nil, err
}

// profiled returns the verdict for cred with its user's profile merged
// in, under the revocation invariant of verdict (see collapsed).
func (h *Handler) profiled(ctx context.Context, cred Credential) (*Verdict, error) {
	c := h.opts.Cache
	if c == nil {
		return h.profiledUncached(ctx, cred)
	}
	key := h.keys.profileKey(cred)
	if v, ok := c.Get(key, h.now()); ok {
		h.metrics.cacheResult(tierProfile, true)
		return v, nil
	}
	h.metrics.cacheResult(tierProfile, false)
	return h.collapsed(ctx, key, flightProfile, func(ctx context.Context) (*Verdict, bool, error) {
		return h.fillProfile(ctx, cred)
	})
}

// profiledUncached fetches without a cache. No epoch tells it of a
// revocation during the fetch, so the revocation state is read again
// after it: a request never grants after a revocation returned on the
// strength of a profile fetched meanwhile.
func (h *Handler) profiledUncached(ctx context.Context, cred Credential) (*Verdict, error) {
	ctx, cancel := context.WithTimeout(ctx, h.opts.FlightTimeout)
	defer cancel()
	v, _, err := h.fillProfile(ctx, cred)
	if err != nil || v.Reason != ReasonNone || h.opts.Revocations == nil {
		return v, err
	}
	revoked, err := h.opts.Revocations.TokenRevoked(ctx, v.Identity)
	switch {
	case err != nil && h.opts.RevocationFailOpen:
		return v, nil
	case err != nil:
		return nil, err
	case revoked:
		return h.newVerdict(Identity{}, ReasonTokenRevoked)
	}
	return v, nil
}

// fillProfile verifies cred afresh (for the claims a cached verdict does
// not keep, and a current revocation state) and fetches the profile.
// store is false for a verdict that must not be reused.
func (h *Handler) fillProfile(ctx context.Context, cred Credential) (v *Verdict, store bool, err error) {
	id, reason, cacheable, err := h.resolve(ctx, cred)
	if err != nil {
		return nil, false, err
	}
	if reason == ReasonNone {
		p, preason, err := h.opts.Profiles.Profile(ctx, &id, cred.Value)
		if err != nil {
			return nil, false, err
		}
		reason = preason
		id = mergeProfile(id, p)
	}
	v, err = h.newVerdict(id, reason)
	return v, cacheable, err
}

// mergeProfile lets the profile's fields override the token's claims.
func mergeProfile(id Identity, p Profile) Identity {
	if p.HasVerified {
		id.Verified = p.Verified
	}
	if p.HasAnonymous {
		id.Anonymous = p.Anonymous
	}
	if p.Roles != nil {
		id.Roles = p.Roles
	}
	if len(p.Claims) > 0 {
		claims := make(map[string]string, len(id.Claims)+len(p.Claims))
		for k, v := range id.Claims {
			claims[k] = v
		}
		for k, v := range p.Claims {
			claims[k] = v
		}
		id.Claims = claims
	}
	return id
}
