package resolver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
)

// RequireHeader carries requirements on /resolve/{path...}, set by the gateway.
const RequireHeader = "X-Authresolver-Require"

// Options configure a Handler. Zero values mean: no JWT (Tokens nil), no
// cookie sessions (Sessions nil), no revocation check (Revocations nil).
type Options struct {
	Tokens        TokenVerifier
	Sessions      SessionStore
	Revocations   RevocationChecker
	HeaderPrefix  string        // default "X-Auth-"
	ClaimHeaders  []ClaimHeader // extra claim → header (name without prefix)
	TokenHeaders  []string      // headers that may carry a raw token
	SessionCookie string        // cookie holding the session ID
	CacheTTL      time.Duration // upper bound of Cache-Control max-age; default 5s
	Logger        *slog.Logger
	Metrics       *Metrics // nil: not measured
	Now           func() time.Time
}

// Handler answers the resolve endpoints.
type Handler struct {
	opts    Options
	extract Extractor
	names   names
	denials map[Reason]denial
	maxAge  [][]string // Cache-Control values by seconds, 0..CacheTTL
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time
}

// New returns a Handler. It does no I/O.
func New(o Options) *Handler {
	if o.HeaderPrefix == "" {
		o.HeaderPrefix = "X-Auth-"
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &Handler{
		opts:    o,
		names:   newNames(o.HeaderPrefix, o.ClaimHeaders),
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

// Mount adds the resolve routes to r: GET/HEAD /resolve and
// /_resolver/resolve (requirements from the query), and any method on
// /resolve/{path...} (Envoy ext_authz; requirements from RequireHeader).
func (h *Handler) Mount(r chi.Router) {
	query := http.HandlerFunc(h.serveQuery)
	r.Get("/resolve", query)
	r.Head("/resolve", query)
	r.Get("/_resolver/resolve", query)
	r.Head("/_resolver/resolve", query)
	r.Handle("/resolve/*", http.HandlerFunc(h.serveGateway))
}

// serveQuery reads requirements from the resolve URL's query, which the proxy
// configuration owns.
func (h *Handler) serveQuery(w http.ResponseWriter, r *http.Request) {
	req, err := ParseRequirement(r.URL.RawQuery, true)
	h.serve(w, r, req, err)
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

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, req Requirement, reqErr error) {
	start := time.Now()
	ctx := r.Context()
	cred, reason := h.extract.Extract(r.Header)
	if reqErr != nil {
		// A requirement that does not parse is a proxy misconfiguration (or
		// a hostile gateway header): fail closed, never optional.
		req = Requirement{}
	}
	var id Identity
	var err error
	switch {
	case reason != ReasonNone:
	case cred.Kind == "":
		reason = ReasonMissingCredential
	default:
		id, reason, err = h.resolve(ctx, cred)
	}
	switch {
	case err != nil:
		h.unavailable(w, r, cred, err)
		h.observe(outcomeError, "unavailable", start)
		return
	case reason != ReasonNone && req.Optional:
		w.Header()[h.names.sessionValid] = valFalse
		w.Header()["Cache-Control"] = noStore
		w.WriteHeader(http.StatusOK)
		h.observe(outcomeAnonymous, reason, start)
		return
	case reason != ReasonNone:
		h.deny(w, r, cred, reason)
		h.observe(outcomeDeny, reason, start)
		return
	}
	hs, reason := h.names.identityHeaders(&id)
	switch {
	case reason != ReasonNone:
		h.deny(w, r, cred, reason)
		h.observe(outcomeDeny, reason, start)
		return
	case reqErr != nil:
		h.log.LogAttrs(ctx, slog.LevelWarn, "invalid requirement", slog.String("error", reqErr.Error()))
		reason = ReasonInvalidRequirement
	default:
		reason = req.Check(&id)
	}
	if reason != ReasonNone {
		h.forbid(w, r, cred, reason)
		h.observe(outcomeForbid, reason, start)
		return
	}
	hdr := w.Header()
	for _, f := range hs {
		hdr[f.key] = f.val
	}
	hdr["Cache-Control"] = h.cacheControl(id.ExpiresAt)
	w.WriteHeader(http.StatusOK)
	h.observe(outcomeAllow, ReasonNone, start)
}

// resolve asks the verifier or store who cred belongs to. A technical
// failure is an error; a bad credential is a Reason.
func (h *Handler) resolve(ctx context.Context, cred Credential) (Identity, Reason, error) {
	if cred.Kind == CredentialSession {
		return h.opts.Sessions.Lookup(ctx, cred.Value)
	}
	if h.opts.Tokens == nil {
		// JWT is not configured: a Bearer token cannot be accepted, and it
		// is still the credential that decides (never skipped for a cookie).
		return Identity{}, ReasonUnknownIssuer, nil
	}
	id, reason, err := h.opts.Tokens.Verify(ctx, cred.Value)
	if err != nil || reason != ReasonNone || h.opts.Revocations == nil {
		return id, reason, err
	}
	revoked, err := h.opts.Revocations.TokenRevoked(ctx, id)
	switch {
	case err != nil:
		return Identity{}, ReasonNone, err
	case revoked:
		return Identity{}, ReasonTokenRevoked, nil
	}
	return id, ReasonNone, nil
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

func (h *Handler) deny(w http.ResponseWriter, r *http.Request, cred Credential, reason Reason) {
	d := h.denial(reason)
	hdr := w.Header()
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
	if h.metrics != nil {
		h.metrics.observe(outcome, reason, time.Since(start))
	}
}
