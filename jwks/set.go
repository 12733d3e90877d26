package jwks

import (
	"context"
	"fmt"

	"github.com/authresolver/authresolver/resolver"
)

// Set verifies tokens of several issuers: it reads a token's (unverified)
// iss, then verifies it fully with that issuer's Verifier and keys only.
type Set struct {
	byIssuer map[string]*Verifier
	all      []*Verifier
}

// NewSet returns a Set of vs. Configuration must have rejected duplicate
// issuers: NewSet panics if two verifiers share one, since it could not
// tell which of them a token belongs to.
func NewSet(vs ...*Verifier) *Set {
	s := &Set{byIssuer: make(map[string]*Verifier, len(vs)), all: vs}
	for _, v := range vs {
		if _, dup := s.byIssuer[v.issuer]; dup {
			panic(fmt.Sprintf("jwks: two verifiers for issuer %q", v.issuer))
		}
		s.byIssuer[v.issuer] = v
	}
	return s
}

// Verify verifies token with the Verifier of its issuer; a token of no
// issuer in s gets resolver.ReasonUnknownIssuer. Errors are as for
// Verifier.Verify.
func (s *Set) Verify(ctx context.Context, token string) (resolver.Identity, resolver.Reason, error) {
	var t parsedToken
	if r := t.parse(token); r != resolver.ReasonNone {
		return resolver.Identity{}, r, nil
	}
	v := s.byIssuer[t.claims.iss]
	if v == nil {
		return resolver.Identity{}, resolver.ReasonUnknownIssuer, nil
	}
	return v.verify(ctx, &t)
}

// Ready reports whether at least one verifier is ready, so that /readyz
// fails only while every JWKS is unusable.
func (s *Set) Ready() bool {
	for _, v := range s.all {
		if v.Ready() {
			return true
		}
	}
	return false
}
