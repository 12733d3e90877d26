package resolver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"
)

// RequireHeader carries requirements on /resolve/{path...}, set by the gateway.
const RequireHeader = "X-Authresolver-Require"

// Options configure a Handler. Zero values mean: no JWT (Tokens nil), no
// cookie sessions (Sessions nil), no revocation check (Revocations nil).
type Options struct {
	Tokens      TokenVerifier
	Sessions    SessionStore
	Revocations RevocationChecker
	// Login sends browsers to the login page on routes with a login
	// requirement; nil: such routes answer the plain 401.
	Login LoginRedirector
	// Introspector, if not nil, decides bearer tokens that are not JWTs.
	Introspector Introspector
	// Profiles, if not nil, fetches fresh profiles for profile=true
	// routes and "always" issuers.
	Profiles ProfileSource
	// RevocationFailOpen allows a valid JWT whose revocation check cannot
	// reach the store (counted and logged); false answers 503.
	RevocationFailOpen bool
	// Asserter signs <prefix>Assertion on every allow, once per cached
	// verdict; nil: no assertion.
	Asserter Asserter
	Cache    Cache       // in-process decisions; nil: none
	Shared   SharedCache // cross-replica decisions; nil: none
	// DenialTTL bounds how long a denial is reused from Cache; default 1s.
	DenialTTL     time.Duration
	HeaderPrefix  string        // default "X-Auth-"
	ClaimHeaders  []ClaimHeader // extra claim → header (name without prefix)
	TokenHeaders  []string      // headers that may carry a raw token
	SessionCookie string        // cookie holding the session ID
	CacheTTL      time.Duration // upper bound of Cache-Control max-age; default 5s
	Logger        *slog.Logger
	Metrics       *Metrics // nil: not measured
	Now           func() time.Time
	// FlightTimeout bounds one verification or lookup (with its L2 and
	// revocation round trips). It runs detached from the request that
	// started it, as other requests may be waiting on it; default 5s.
	FlightTimeout time.Duration
	// ValidSessionID reports whether a cookie value has the shape of a
	// session ID; others are refused (malformed_session) before any I/O.
	// Nil: every value goes to the store.
	ValidSessionID func(string) bool
}

// Handler answers the resolve endpoints.
type Handler struct {
	opts    Options
	extract Extractor
	names   names
	denials map[Reason]denial
	maxAge  [][]string // Cache-Control values by seconds, 0..CacheTTL
	keys    keyer
	flights singleflight.Group
	log     *slog.Logger
	metrics *Metrics // nil-safe
	now     func() time.Time
}

// New returns a Handler. It does no I/O.
func New(o Options) *Handler {
	if o.HeaderPrefix == "" {
		o.HeaderPrefix = "X-Auth-"
	}
	o.CacheTTL = max(o.CacheTTL, 0)
	if o.DenialTTL <= 0 {
		o.DenialTTL = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FlightTimeout <= 0 {
		o.FlightTimeout = DefaultFlightTimeout
	}
	h := &Handler{
		opts:    o,
		names:   newNames(o.HeaderPrefix, o.ClaimHeaders),
		keys:    newKeyer(),
		log:     o.Logger,
		metrics: o.Metrics,
		now:     o.Now,
	}
	for _, th := range o.TokenHeaders {
		h.extract.TokenHeaders = append(h.extract.TokenHeaders, http.CanonicalHeaderKey(th))
	}
	if o.Sessions != nil {
		h.extract.SessionCookie = o.SessionCookie
	}
	h.denials = newDenials()
	secs := int(o.CacheTTL / time.Second)
	for i := 0; i <= secs; i++ {
		h.maxAge = append(h.maxAge, []string{"private, max-age=" + strconv.Itoa(i)})
	}
	return h
}

// ServeHTTP answers GET/HEAD /resolve and /_resolver/resolve (requirements
// from the query), and any method on /resolve/{path...} (Envoy ext_authz;
// requirements from RequireHeader). It routes by itself, without a router's
// per-request allocations: this is the hot path.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == "/resolve" || p == "/_resolver/resolve":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header()["Allow"] = allowGetHead
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if p == "/_resolver/resolve" {
			h.serveAuthgear(w, r)
			return
		}
		h.serveQuery(w, r)
	case strings.HasPrefix(p, "/resolve/"):
		h.serveGateway(w, r)
	default:
		http.NotFound(w, r)
	}
}

var allowGetHead = []string{"GET, HEAD"}

// serveQuery reads requirements from the resolve URL's query, which the proxy
// configuration owns.
func (h *Handler) serveQuery(w http.ResponseWriter, r *http.Request) {
	req, err := ParseRequirement(r.URL.RawQuery, true)
	h.serve(w, r, req, err)
}

// serveAuthgear answers /_resolver/resolve as Authgear's resolver does:
// optional unless the query says otherwise (optional=false), or asks for a
// login redirect, which only a route that denies can give.
func (h *Handler) serveAuthgear(w http.ResponseWriter, r *http.Request) {
	req, err := ParseRequirement(r.URL.RawQuery, true)
	if err == nil && req.Login == LoginNone && !optionalGiven(r.URL.RawQuery) {
		req.Optional = true
	}
	h.serve(w, r, req, err)
}

// optionalGiven reports whether a query that ParseRequirement accepted
// names optional.
func optionalGiven(query string) bool {
	for pair := range strings.SplitSeq(query, "&") {
		if name, _, _ := strings.Cut(pair, "="); name == "optional" {
			return true
		}
	}
	return false
}

// serveGateway never reads the query: on /resolve/{path...} it is the
// client's. Requirements come from the gateway-set header, without optional.
func (h *Handler) serveGateway(w http.ResponseWriter, r *http.Request) {
	var v string
	if vs := r.Header[RequireHeader]; len(vs) > 0 {
		v = vs[0]
		if len(vs) > 1 {
			h.serve(w, r, Requirement{}, errors.New("resolver: requirement header given twice"))
			return
		}
	}
	req, err := ParseRequirement(v, false)
	h.serve(w, r, req, err)
}

// Check answers one authorization request from r's headers alone, exactly
// as the resolve endpoints do, but with the route's requirement given by the
// caller (reqErr when it did not parse: fail closed) instead of read from
// the URL. Transports other than HTTP forward auth (gRPC ext_authz) call it
// with a ResponseWriter that records the answer; r needs only its method,
// path, headers and context.
func (h *Handler) Check(w http.ResponseWriter, r *http.Request, req Requirement, reqErr error) {
	h.serve(w, r, req, reqErr)
}

// IdentityHeaders returns the canonical names of every header an answer may
// set to describe the caller (identity, claim and error headers), so that a
// gateway can be told to remove client-sent copies of those an answer does
// not set. The caller must not modify the slice.
func (h *Handler) IdentityHeaders() []string { return h.names.all }

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, req Requirement, reqErr error) {
	start := time.Now()
	ctx := r.Context()
	cred, reason := h.extract.Extract(r.Header)
	if reqErr != nil {
		// A requirement that does not parse is a proxy misconfiguration (or
		// a hostile gateway header): fail closed, never optional.
		req = Requirement{}
	}
	var v *Verdict
	var err error
	switch {
	case reason != ReasonNone:
	case cred.Kind == "":
		reason = ReasonMissingCredential
	default:
		v, err = h.verdict(ctx, cred)
		if err == nil && h.wantsProfile(&req, v) {
			var noSource error
			if v, noSource, err = h.withProfile(ctx, cred, v); noSource != nil {
				reqErr = noSource
			}
		}
		if err == nil {
			reason = v.Reason
		}
	}
	switch {
	case err != nil:
		h.unavailable(w, r, cred, err)
		h.observe(outcomeError, reasonUnavailable, start)
		return
	case reason != ReasonNone && req.Optional:
		w.Header()[h.names.sessionValid] = valFalse
		w.Header()["Cache-Control"] = noStore
		w.WriteHeader(http.StatusOK)
		h.observe(outcomeAnonymous, reason, start)
		return
	case reason != ReasonNone:
		h.deny(w, r, cred, reason, req.Login)
		h.observe(outcomeDeny, reason, start)
		return
	case reqErr != nil:
		h.log.LogAttrs(ctx, slog.LevelWarn, "invalid requirement", slog.String("error", reqErr.Error()))
		reason = ReasonInvalidRequirement
	default:
		reason = req.Check(&v.Identity)
	}
	if reason != ReasonNone {
		h.forbid(w, r, cred, reason)
		h.observe(outcomeForbid, reason, start)
		return
	}
	hdr := w.Header()
	for i, val := range v.values {
		if val != "" {
			// A one-element, capacity-one window on the verdict's values:
			// an Add by later code reallocates instead of writing into it.
			hdr[h.names.order[i]] = v.values[i : i+1 : i+1]
		}
	}
	hdr["Cache-Control"] = h.cacheControl(v.Expires)
	w.WriteHeader(http.StatusOK)
	h.observe(outcomeAllow, ReasonNone, start)
}

// fill resolves cred from the shared cache, else the verifier or store.
// store is false for a verdict that must not be reused.
func (h *Handler) fill(ctx context.Context, cred Credential) (v *Verdict, store bool, err error) {
	var gen uint64
	if h.opts.Shared != nil {
		id, until, g, err := h.opts.Shared.Get(ctx, cred)
		switch {
		case err != nil:
			h.log.LogAttrs(ctx, slog.LevelDebug, "shared cache unavailable", slog.String("error", err.Error()))
		case !until.IsZero():
			h.metrics.cacheResult(tierL2, true)
			v, err := h.newVerdict(id, ReasonNone)
			if err != nil {
				return nil, false, err
			}
			if v.Expires.After(until) {
				// A refilled L1 must not outlive the shared entry.
				v.Expires = until
			}
			return v, true, nil
		default:
			h.metrics.cacheResult(tierL2, false)
			gen = g
		}
	}
	id, reason, cacheable, err := h.resolve(ctx, cred)
	if err != nil {
		return nil, false, err
	}
	v, err = h.newVerdict(id, reason)
	if err != nil {
		return nil, false, err
	}
	if cacheable && h.opts.Shared != nil && v.Reason == ReasonNone {
		if ttl := v.Expires.Sub(h.now()); ttl >= time.Second {
			if err := h.opts.Shared.Set(ctx, cred, id, ttl, gen); err != nil {
				h.log.LogAttrs(ctx, slog.LevelDebug, "shared cache unavailable", slog.String("error", err.Error()))
			}
		}
	}
	return v, cacheable, nil
}

// newVerdict prepares the answer for an identity or a denial, with how long
// it may be reused: allows up to the cache TTL and never past the
// credential's expiry nor its assertion's; denials only briefly (they absorb
// floods of one bad credential, and an unknown kid must not outlive the JWKS
// refetch cooldown). It returns an error only if the assertion cannot be
// signed.
func (h *Handler) newVerdict(id Identity, reason Reason) (*Verdict, error) {
	now := h.now()
	if reason == ReasonNone {
		vals, bad := h.names.identityHeaders(&id)
		if bad == ReasonNone {
			exp := now.Add(h.opts.CacheTTL)
			if !id.ExpiresAt.IsZero() && id.ExpiresAt.Before(exp) {
				exp = id.ExpiresAt
			}
			if h.opts.Asserter != nil {
				aexp, err := h.assert(&id, vals, now)
				if err != nil {
					return nil, err
				}
				if aexp.Before(exp) {
					exp = aexp
				}
			}
			id.AMR, id.Claims = nil, nil // in vals; not needed for checks
			return &Verdict{Identity: id, Expires: exp, values: vals}, nil
		}
		reason = bad
	}
	return &Verdict{Reason: reason, Expires: now.Add(min(h.opts.DenialTTL, h.opts.CacheTTL))}, nil
}

// AssertionLifetime is how long an identity assertion is valid (never past
// the credential's expiry). A verdict is not reused past its assertion's
// expiry, so an app gets an assertion valid for at least AssertionLifetime
// minus the cache TTL.
const AssertionLifetime = 60 * time.Second

// assert signs id's assertion into vals and returns its expiry.
func (h *Handler) assert(id *Identity, vals []string, now time.Time) (time.Time, error) {
	exp := now.Add(AssertionLifetime)
	if !id.ExpiresAt.IsZero() && id.ExpiresAt.Before(exp) {
		exp = id.ExpiresAt
	}
	tok, err := h.opts.Asserter.Assert(id, exp)
	if err != nil {
		return time.Time{}, fmt.Errorf("resolver: identity assertion: %w", err)
	}
	vals[hAssertion] = tok
	return exp, nil
}

// resolve asks the verifier or store who cred belongs to. A technical
// failure is an error; a bad credential is a Reason. cacheable is false for
// a decision that must not be reused (allowed without a revocation check).
func (h *Handler) resolve(ctx context.Context, cred Credential) (id Identity, reason Reason, cacheable bool, err error) {
	if cred.Kind == CredentialSession {
		id, reason, err = h.opts.Sessions.Lookup(ctx, cred.Value)
		return id, reason, true, err
	}
	id, reason, err = h.verifyBearer(ctx, cred.Value)
	if err != nil || reason != ReasonNone || h.opts.Revocations == nil {
		return id, reason, true, err
	}
	revoked, err := h.opts.Revocations.TokenRevoked(ctx, id)
	switch {
	case err != nil && h.opts.RevocationFailOpen:
		h.metrics.revocationCheckFailed("open")
		h.log.LogAttrs(ctx, slog.LevelWarn, "revocation check failed; allowing (fail open)", slog.String("error", err.Error()))
		return id, ReasonNone, false, nil
	case err != nil:
		h.metrics.revocationCheckFailed("closed")
		return Identity{}, ReasonNone, false, err
	case revoked:
		return Identity{}, ReasonTokenRevoked, true, nil
	}
	return id, ReasonNone, true, nil
}

// cacheControl allows reuse for at most the cache TTL and never past the
// credential's expiry.
func (h *Handler) cacheControl(exp time.Time) []string {
	secs := len(h.maxAge) - 1
	if !exp.IsZero() {
		if left := int(exp.Sub(h.now()) / time.Second); left < secs {
			secs = max(left, 0)
		}
	}
	return h.maxAge[secs]
}

var (
	noStore    = []string{"no-store"}
	retryAfter = []string{"1"}
	jsonType   = []string{"application/json"}
)

// deny answers 401; on a route with a login requirement, a browser
// navigation is sent to the login page instead (302), or told where it is
// (401 with Location, for NGINX, which cannot pass a 302 on).
func (h *Handler) deny(w http.ResponseWriter, r *http.Request, cred Credential, reason Reason, login Login) {
	d := h.denial(reason)
	hdr := w.Header()
	if login != LoginNone && h.opts.Login != nil {
		if loc, ok := h.opts.Login.Location(r); ok {
			hdr["Location"] = []string{loc}
			if login == LoginRedirect {
				hdr[h.names.sessionValid] = valFalse
				hdr["Cache-Control"] = noStore
				h.logDecision(r, cred, reason, http.StatusFound)
				w.WriteHeader(http.StatusFound)
				return
			}
		}
	}
	hdr["Www-Authenticate"] = d.wwwAuthenticate
	hdr[h.names.sessionValid] = valFalse
	if reason != ReasonMissingCredential {
		hdr[h.names.errorCode] = d.code
	}
	h.logDecision(r, cred, reason, http.StatusUnauthorized)
	h.writeDenial(w, r, d, http.StatusUnauthorized)
}

func (h *Handler) forbid(w http.ResponseWriter, r *http.Request, cred Credential, reason Reason) {
	d := h.denial(reason)
	hdr := w.Header()
	hdr[h.names.sessionValid] = valTrue
	hdr[h.names.errorCode] = d.code
	h.logDecision(r, cred, reason, http.StatusForbidden)
	h.writeDenial(w, r, d, http.StatusForbidden)
}

func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, cred Credential, err error) {
	h.log.LogAttrs(r.Context(), slog.LevelWarn, "unavailable",
		slog.String("credential", cred.Kind), slog.String("error", err.Error()),
		slog.String("method", r.Method), slog.String("path", r.URL.Path))
	d := h.denial(reasonUnavailable)
	hdr := w.Header()
	hdr["Retry-After"] = retryAfter
	hdr[h.names.errorCode] = d.code
	h.writeDenial(w, r, d, http.StatusServiceUnavailable)
}

func (h *Handler) writeDenial(w http.ResponseWriter, r *http.Request, d denial, status int) {
	hdr := w.Header()
	hdr["Cache-Control"] = noStore
	hdr["Content-Type"] = jsonType
	hdr["Content-Length"] = d.length
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(d.body)
	}
}

func (h *Handler) logDecision(r *http.Request, cred Credential, reason Reason, status int) {
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "denied",
		slog.String("reason", string(reason)), slog.Int("status", status),
		slog.String("credential", cred.Kind),
		slog.String("method", r.Method), slog.String("path", r.URL.Path))
}

func (h *Handler) observe(outcome string, reason Reason, start time.Time) {
	h.metrics.observe(outcome, reason, time.Since(start))
}
