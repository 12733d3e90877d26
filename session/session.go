// Package session owns cookie sessions and JWT revocations: it creates, looks
// up, lists and revokes sessions and records revoked tokens (by jti and by a
// per-user cut-off time).
//
// Two stores share one method set and one behaviour: RedisStore, over any
// go-redis UniversalClient (standalone, Sentinel or Cluster), whose key
// layout is specified in LAYOUT.md so that a login service in any language
// can create sessions itself; and MemoryStore, for a single process (the dev
// mode and tests).
//
// A session ID is the bearer secret in the cookie. It is never stored, logged
// or shown: Redis holds its SHA-256, and listings, logs and identity headers
// use the session's public handle, a one-way derivation of the ID.
package session

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/authresolver/authresolver/resolver"
)

// Errors returned by the stores. Compare with errors.Is.
var (
	// ErrNotFound means the session does not exist or has expired.
	ErrNotFound = errors.New("session: not found")
	// ErrInvalid means the caller passed an unacceptable value (the admin API
	// answers 400). Errors that match it are *InvalidError.
	ErrInvalid = errors.New("session: invalid input")
)

// InvalidError says which input was rejected and why. It matches ErrInvalid.
// Problem is safe to show to the API client: it never quotes the value.
type InvalidError struct {
	Field   string // e.g. "user_id", "roles", "ttl"
	Problem string // e.g. "must be 1 to 256 bytes"
}

func (e *InvalidError) Error() string {
	return "session: invalid " + e.Field + ": " + e.Problem
}

// Is reports whether target is ErrInvalid.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Defaults.
const (
	DefaultPrefix             = "authresolver:v1:"
	DefaultIdleTimeout        = 720 * time.Hour
	DefaultLifetime           = 8760 * time.Hour
	DefaultTouchInterval      = time.Minute
	DefaultMaxSessionsPerUser = 1000
)

// Limits on input. They bound what one session may occupy, in Redis and in
// identity headers.
const (
	MinTTL = time.Minute // shortest session TTL accepted by Create
	// MaxUserIDBytes is the resolver's limit on a sub (an identity header
	// value): every user the resolver accepts can have sessions and be
	// revoked.
	MaxUserIDBytes     = 1024
	MaxJTIBytes        = 1024
	MaxIssuerBytes     = 1024
	MaxListEntries     = 64 // roles, amr
	MaxEntryBytes      = 256
	MaxAttributes      = 64
	MaxAttributeKeyLen = 256
	MaxAttributeValLen = 1024
)

const (
	handleInputPrefix = "authresolver/session-handle/v1\x00"
	handleBytes       = 16
	idBytes           = 32
	idLength          = 43 // base64url, no padding, of idBytes
	keyHashLength     = 64 // hex SHA-256
	redactedID        = "REDACTED"
)

// Options configure a store. Zero fields take the defaults above; negative
// durations are treated as zero.
type Options struct {
	// Prefix starts every Redis key. It must not contain '{' or '}' (they
	// would break the Cluster hash tags). Unused by MemoryStore.
	Prefix string
	// IdleTimeout ends a session that has not been used for this long.
	IdleTimeout time.Duration
	// Lifetime ends every session this long after its creation, however
	// active; it is also the default and the longest session TTL.
	Lifetime time.Duration
	// TouchInterval is how stale the recorded last access may become before
	// a lookup refreshes it (one write per session per interval, never one
	// per request). It is capped at IdleTimeout/2.
	TouchInterval time.Duration
	// MaxSessionsPerUser bounds a user's sessions. Creating one more ends
	// the user's session that would expire first.
	MaxSessionsPerUser int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives failures that do not fail the call (a lost last-access
	// refresh). Nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.Lifetime <= 0 {
		o.Lifetime = DefaultLifetime
	}
	if o.TouchInterval <= 0 {
		o.TouchInterval = DefaultTouchInterval
	}
	o.TouchInterval = min(o.TouchInterval, o.IdleTimeout/2)
	if o.MaxSessionsPerUser <= 0 {
		o.MaxSessionsPerUser = DefaultMaxSessionsPerUser
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// ID is a session ID: 256 random bits, base64url without padding (43
// characters). It is the bearer secret of the cookie, so its String,
// GoString and LogValue methods redact it; string(id) is the cookie value.
type ID string

// NewID returns a fresh random session ID.
func NewID() ID {
	var b [idBytes]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand crashes the program instead)
	return ID(base64.RawURLEncoding.EncodeToString(b[:]))
}

// ParseID checks that s has the exact shape of a session ID: 43 characters
// of the base64url alphabet, canonically encoded. It returns an error
// matching ErrInvalid otherwise, without saying more about s.
func ParseID(s string) (ID, error) {
	if len(s) != idLength {
		return "", invalid("session_id", "must be %d base64url characters", idLength)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isBase64URL(c) {
			return "", invalid("session_id", "must be %d base64url characters", idLength)
		}
	}
	// 43 characters carry 258 bits: the last character's low two bits must
	// be zero, or two cookie values would name one session.
	if strings.IndexByte("AEIMQUYcgkosw048", s[idLength-1]) < 0 {
		return "", invalid("session_id", "is not canonically encoded")
	}
	return ID(s), nil
}

// String returns a redacted placeholder, never the ID.
func (id ID) String() string { return redactedID }

// GoString returns a redacted placeholder, never the ID.
func (id ID) GoString() string { return redactedID }

// LogValue returns a redacted placeholder, never the ID.
func (id ID) LogValue() slog.Value { return slog.StringValue(redactedID) }

// Handle returns the session's public handle: the first 16 bytes of
// SHA-256("authresolver/session-handle/v1" || 0x00 || hex(SHA-256(id))),
// base64url without padding (22 characters). It names the session in
// listings, logs and the Session-Id header. It cannot be turned back into
// the ID and differs from the Redis key hash; it is derived from that hash
// so that a listing of the user index can show it without storing it.
func (id ID) Handle() string { return handleOf(id.keyHash()) }

// handleOf returns the handle of the session whose key hash is keyHash.
func handleOf(keyHash string) string {
	var buf [len(handleInputPrefix) + keyHashLength]byte // on the stack: Lookup calls this per request
	sum := sha256.Sum256(append(append(buf[:0], handleInputPrefix...), keyHash...))
	return base64.RawURLEncoding.EncodeToString(sum[:handleBytes])
}

// keyHash returns hex(SHA-256(id)), the only form of the ID that is stored.
func (id ID) keyHash() string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// sha256Hex returns hex(SHA-256(s)); of a user ID it names the user's keys.
func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Params describe a session to create.
type Params struct {
	UserID    string        // 1 to MaxUserIDBytes of printable UTF-8
	TTL       time.Duration // absolute lifetime of this session; zero means Options.Lifetime
	Anonymous bool
	Verified  bool
	Roles     []string
	AMR       []string // authentication methods (RFC 8176), e.g. "pwd", "mfa"
	// Attributes are free-form values of the session (e.g. "email"); the
	// resolver can expose them as claim headers.
	Attributes map[string]string
	// AuthenticatedAt is when the user authenticated; zero means now.
	AuthenticatedAt time.Time
}

// Validate returns an *InvalidError (matching ErrInvalid) for the first
// unacceptable field, given the store's lifetime and clock reading now.
func (p Params) Validate(lifetime time.Duration, now time.Time) error {
	if err := ValidateUserID(p.UserID); err != nil {
		return err
	}
	if p.TTL != 0 {
		if err := ValidateTTL(p.TTL, lifetime); err != nil {
			return err
		}
	}
	if err := validateList("roles", p.Roles, ","); err != nil {
		return err
	}
	if err := validateList("amr", p.AMR, ", "); err != nil {
		return err
	}
	if err := validateAttributes(p.Attributes); err != nil {
		return err
	}
	if p.AuthenticatedAt.After(now.Add(time.Minute)) {
		return invalid("authenticated_at", "is in the future")
	}
	return nil
}

// ValidateUserID returns an *InvalidError unless id is 1 to MaxUserIDBytes
// (1024) bytes of printable UTF-8 (no control or format characters).
func ValidateUserID(id string) error {
	if len(id) == 0 || len(id) > MaxUserIDBytes {
		return invalid("user_id", "must be 1 to %d bytes", MaxUserIDBytes)
	}
	if !printable(id) {
		return invalid("user_id", "must be printable UTF-8")
	}
	return nil
}

// ValidateTTL returns an *InvalidError unless MinTTL <= ttl <= lifetime.
func ValidateTTL(ttl, lifetime time.Duration) error {
	if ttl < MinTTL || ttl > lifetime {
		return invalid("ttl", "must be between %v and %v", MinTTL, lifetime)
	}
	return nil
}

// ValidateIssuer returns an *InvalidError unless iss is 1 to 1024 bytes of
// printable UTF-8.
func ValidateIssuer(iss string) error {
	if len(iss) == 0 || len(iss) > MaxIssuerBytes {
		return invalid("issuer", "must be 1 to %d bytes", MaxIssuerBytes)
	}
	if !printable(iss) {
		return invalid("issuer", "must be printable UTF-8")
	}
	return nil
}

// ValidateJTI returns an *InvalidError unless jti is 1 to 1024 bytes of
// printable UTF-8.
func ValidateJTI(jti string) error {
	if len(jti) == 0 || len(jti) > MaxJTIBytes {
		return invalid("jti", "must be 1 to %d bytes", MaxJTIBytes)
	}
	if !printable(jti) {
		return invalid("jti", "must be printable UTF-8")
	}
	return nil
}

// validateList checks a list stored comma-separated: at most MaxListEntries
// entries, each 1 to MaxEntryBytes printable bytes without any of forbidden
// and without surrounding spaces.
func validateList(field string, list []string, forbidden string) error {
	if len(list) > MaxListEntries {
		return invalid(field, "must have at most %d entries", MaxListEntries)
	}
	for _, e := range list {
		switch {
		case len(e) == 0 || len(e) > MaxEntryBytes:
			return invalid(field, "entries must be 1 to %d bytes", MaxEntryBytes)
		case !printable(e):
			return invalid(field, "entries must be printable UTF-8")
		case strings.ContainsAny(e, forbidden):
			return invalid(field, "entries must not contain %q", forbidden)
		case strings.TrimSpace(e) != e:
			return invalid(field, "entries must not start or end with a space")
		}
	}
	return nil
}

func validateAttributes(attrs map[string]string) error {
	if len(attrs) > MaxAttributes {
		return invalid("attributes", "must have at most %d keys", MaxAttributes)
	}
	for k, v := range attrs {
		if len(k) == 0 || len(k) > MaxAttributeKeyLen || !printable(k) {
			return invalid("attributes", "keys must be 1 to %d bytes of printable UTF-8", MaxAttributeKeyLen)
		}
		if len(v) > MaxAttributeValLen || !printable(v) {
			return invalid("attributes", "values must be at most %d bytes of printable UTF-8", MaxAttributeValLen)
		}
	}
	return nil
}

// printable reports whether s is valid UTF-8 without control or format
// characters, so that it can travel in an HTTP header value.
func printable(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || !unicode.IsPrint(r) && r != ' ' {
			return false
		}
		i += n
	}
	return true
}

// Created is the result of creating a session. ID is the cookie value; it is
// redacted when printed or logged.
type Created struct {
	ID     ID
	Handle string
	// ExpiresAt is when the session ends unless it is used: the idle
	// deadline, or the absolute expiry if that comes first. Each use moves
	// it on, up to AbsoluteExpiresAt.
	ExpiresAt time.Time
	// AbsoluteExpiresAt is when the session ends however active it is: the
	// cookie's lifetime.
	AbsoluteExpiresAt time.Time
	// Evicted are the handles of the user's sessions that this one ended
	// to keep within MaxSessionsPerUser; cached decisions for them must be
	// dropped.
	Evicted []string
}

// LogValue omits the ID.
func (c Created) LogValue() slog.Value {
	return slog.GroupValue(slog.String("handle", c.Handle), slog.Time("expires_at", c.ExpiresAt), slog.Int("evicted", len(c.Evicted)))
}

// Revoked names a revoked session, so that caches keyed by user or handle
// can be invalidated on every replica.
type Revoked struct {
	UserID string
	Handle string
}

// Session is a live session as shown to administrators: it carries the
// public handle, never the ID.
type Session struct {
	Handle          string            `json:"handle"`
	UserID          string            `json:"user_id"`
	CreatedAt       time.Time         `json:"created_at"`
	AuthenticatedAt time.Time         `json:"authenticated_at"`
	LastAccessAt    time.Time         `json:"last_access_at"`
	ExpiresAt       time.Time         `json:"expires_at"` // min(absolute expiry, last access + idle timeout)
	Anonymous       bool              `json:"anonymous"`
	Verified        bool              `json:"verified"`
	Roles           []string          `json:"roles,omitempty"`
	AMR             []string          `json:"amr,omitempty"`
	Attributes      map[string]string `json:"attributes,omitempty"`
}

// LogValue keeps logs small and free of attribute values (they may be
// personal data).
func (s Session) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("handle", s.Handle),
		slog.String("user_id", s.UserID),
		slog.Time("expires_at", s.ExpiresAt),
	)
}

// record is a stored session. Times are Unix seconds, as in Redis.
type record struct {
	userID         string
	handle         string
	created        int64
	authenticated  int64
	lastAccess     int64
	absoluteExpiry int64
	anonymous      bool
	verified       bool
	roles, amr     []string
	attributes     map[string]string
}

// newRecord validates p and builds the record of a session created now.
func newRecord(p Params, id ID, now time.Time, o Options) (record, error) {
	if err := p.Validate(o.Lifetime, now); err != nil {
		return record{}, err
	}
	ttl := p.TTL
	if ttl == 0 {
		ttl = o.Lifetime
	}
	created := now.Unix()
	auth := created
	if !p.AuthenticatedAt.IsZero() {
		auth = p.AuthenticatedAt.Unix()
	}
	return record{
		userID:         p.UserID,
		handle:         id.Handle(),
		created:        created,
		authenticated:  auth,
		lastAccess:     created,
		absoluteExpiry: created + int64(ttl/time.Second),
		anonymous:      p.Anonymous,
		verified:       p.Verified,
		roles:          slices.Clone(p.Roles),
		amr:            slices.Clone(p.AMR),
		attributes:     cloneMap(p.Attributes),
	}, nil
}

// expiry returns when the session ends: the absolute expiry or the idle
// timeout after the last access, whichever comes first.
func (r *record) expiry(idle time.Duration) int64 {
	return min(r.absoluteExpiry, r.lastAccess+int64(idle/time.Second))
}

// needsTouch reports whether a lookup at now should refresh the last access.
func (r *record) needsTouch(now int64, interval time.Duration) bool {
	return now-r.lastAccess >= max(int64(interval/time.Second), 1)
}

func (r *record) session(idle time.Duration) Session {
	return Session{
		Handle:          r.handle,
		UserID:          r.userID,
		CreatedAt:       time.Unix(r.created, 0),
		AuthenticatedAt: time.Unix(r.authenticated, 0),
		LastAccessAt:    time.Unix(r.lastAccess, 0),
		ExpiresAt:       time.Unix(r.expiry(idle), 0),
		Anonymous:       r.anonymous,
		Verified:        r.verified,
		Roles:           slices.Clone(r.roles),
		AMR:             slices.Clone(r.amr),
		Attributes:      cloneMap(r.attributes),
	}
}

// identity returns what the resolver needs. Attributes become Claims, so the
// configured claim headers work for sessions as they do for JWTs. The
// identity shares r's slices and map: callers that keep r pass a clone.
func (r *record) identity(idle time.Duration) resolver.Identity {
	return resolver.Identity{
		Credential:      resolver.CredentialSession,
		UserID:          r.userID,
		SessionHandle:   r.handle,
		Anonymous:       r.anonymous,
		Verified:        r.verified,
		Roles:           r.roles,
		AMR:             r.amr,
		AuthenticatedAt: time.Unix(r.authenticated, 0),
		IssuedAt:        time.Unix(r.created, 0),
		ExpiresAt:       time.Unix(r.expiry(idle), 0),
		Claims:          r.attributes,
	}
}

// clone returns a copy of r that shares no slice or map with it.
func (r *record) clone() *record {
	c := *r
	c.roles = slices.Clone(r.roles)
	c.amr = slices.Clone(r.amr)
	c.attributes = cloneMap(r.attributes)
	return &c
}

func cloneMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// ceilUnix returns t in Unix seconds, rounded up.
func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

// isBase64URL reports whether c is in the base64url alphabet (RFC 4648 §5).
func isBase64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}
