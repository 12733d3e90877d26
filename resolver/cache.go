package resolver

import (
	"context"
	"hash/maphash"
	"strconv"
	"time"
)

// Key identifies a credential in the in-process cache: a 128-bit keyed hash
// of its value (two maphash sums with a per-process random seed), so the
// cache never holds the credential itself and nobody outside the process
// can aim for a collision.
type Key struct{ A, B uint64 }

// keyer hashes credentials into Keys.
type keyer struct {
	a, b    maphash.Seed
	session uint64 // mixed into session keys, so a token and a cookie never share one
}

func newKeyer() keyer {
	return keyer{a: maphash.MakeSeed(), b: maphash.MakeSeed(), session: maphash.String(maphash.MakeSeed(), CredentialSession)}
}

func (k keyer) key(c Credential) Key {
	key := Key{maphash.String(k.a, c.Value), maphash.String(k.b, c.Value)}
	if c.Kind == CredentialSession {
		key.B ^= k.session
	}
	return key
}

// Verdict is the reusable outcome of resolving one credential: an identity
// with its prepared headers, or a denial reason. Verdicts are shared between
// requests and never modified once built.
type Verdict struct {
	// Identity holds what requirement checks and invalidation tags need;
	// values that only go into headers (AMR, extra claims) are left out, as
	// they are in the prepared header values.
	Identity Identity
	Reason   Reason    // ReasonNone for a valid credential
	Expires  time.Time // not to be used at or after this
	values   []string  // identity header values by position (see names.identityHeaders)
}

// Size is the approximate number of bytes v keeps alive, for the cache's
// byte bound.
func (v *Verdict) Size() int {
	// 512: the Verdict itself plus what the cache keeps per entry (entry,
	// map slots, tag index), calibrated with bench's
	// BenchmarkCachedDecisions (~940 B of heap per typical JWT decision).
	n := 512 + len(v.Identity.UserID) + len(v.Identity.Issuer) + len(v.Identity.SessionHandle) + len(v.Identity.TokenID)
	for _, list := range [][]string{v.Identity.Roles, v.Identity.Scopes, v.Identity.AMR} {
		for _, s := range list {
			n += 16 + len(s)
		}
	}
	for k, s := range v.Identity.Claims {
		n += 32 + len(k) + len(s)
	}
	for _, s := range v.values {
		n += 16 + len(s)
	}
	return n
}

// Tags are the invalidation tags a verdict answers to: its session and its
// user's sessions; or its token's jti and its user's tokens, each both for
// every issuer and for the token's issuer. A revocation names one.
func (v *Verdict) Tags() []string {
	id := &v.Identity
	if v.Reason != ReasonNone || id.UserID == "" {
		return nil
	}
	if id.Credential == CredentialSession {
		return []string{SessionTag(id.SessionHandle), UserSessionsTag(id.UserID)}
	}
	tags := make([]string, 0, 4)
	if id.TokenID != "" {
		tags = append(tags, TokenTag(id.TokenID))
	}
	tags = append(tags, UserTokensTag(id.UserID))
	if id.Issuer == "" {
		return tags
	}
	if id.TokenID != "" {
		tags = append(tags, IssuerTokenTag(id.Issuer, id.TokenID))
	}
	return append(tags, IssuerUserTokensTag(id.Issuer, id.UserID))
}

// Invalidation tags name one kind of revocation each. No two kinds share a
// prefix, and the issuer-scoped ones length-prefix the issuer, so that no
// choice of issuer, user, jti or handle makes one revocation's tag equal
// another's.

// SessionTag names the revocation of one session, by its handle.
func SessionTag(handle string) string { return "s:" + handle }

// UserSessionsTag names the revocation of every session of a user.
func UserSessionsTag(user string) string { return "us:" + user }

// TokenTag names the revocation of one JWT by jti, for every issuer.
func TokenTag(jti string) string { return "j:" + jti }

// UserTokensTag names the revocation of a user's JWTs, for every issuer.
func UserTokensTag(user string) string { return "uj:" + user }

// IssuerTokenTag names the revocation of one JWT of one issuer.
func IssuerTokenTag(issuer, jti string) string { return scopedTag("ij:", issuer, jti) }

// IssuerUserTokensTag names the revocation of a user's JWTs of one issuer.
func IssuerUserTokensTag(issuer, user string) string { return scopedTag("iuj:", issuer, user) }

func scopedTag(kind, issuer, id string) string {
	return kind + strconv.Itoa(len(issuer)) + ":" + issuer + id
}

// Cache is the in-process (L1) decision cache.
type Cache interface {
	// Get returns the verdict for k unless it is absent or expired at now.
	Get(k Key, now time.Time) (*Verdict, bool)
	// Set stores v for k, unless one of v's tags was invalidated or the
	// cache flushed since Epoch returned epoch (v may predate a revocation).
	Set(k Key, v *Verdict, epoch uint64)
	// Epoch changes with every invalidation and flush, before the
	// invalidation returns: the resolver reads it before a lookup.
	Epoch() uint64
	// Changed reports whether one of v's tags was invalidated, or the
	// cache flushed, since Epoch returned since: the resolver asks after a
	// lookup whether its result may predate a revocation.
	Changed(since uint64, v *Verdict) bool
}

// SharedCache is the cross-replica (L2) cache of valid credentials.
type SharedCache interface {
	// Get returns the identity cached for cred and until when it may be
	// used (zero: not cached or no longer usable), and a generation to pass
	// to Set. An error means it cannot be reached.
	Get(ctx context.Context, cred Credential) (id Identity, until time.Time, gen uint64, err error)
	// Set caches id for cred for ttl, unless the cache was invalidated since
	// gen was read.
	Set(ctx context.Context, cred Credential, id Identity, ttl time.Duration, gen uint64) error
}

// Shard returns bits of k for spreading keys over shards.
func (k Key) Shard() uint64 { return k.A }
