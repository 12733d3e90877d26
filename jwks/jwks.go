// Package jwks verifies JWT access tokens against the JSON Web Key Sets of
// trusted issuers.
//
// It owns, per issuer, fetching the JWKS and keeping it fresh in the
// background (httprc, the engine of jwx's jwk.Cache, honouring
// Cache-Control within bounds), keeping the last good key set through
// outages up to a staleness limit, one rate-limited refetch when a token
// names an unknown key, choosing the key and algorithm for a token, and
// mapping verified claims to a resolver.Identity. A Set routes tokens of
// several issuers to their Verifier.
//
// Fetches are bounded: 1 MiB per document, 10s per fetch, at most 3
// redirects and only to the configured URL's scheme and host. Key sets are
// bounded too: at most 4 keys per kid (later ones are skipped) and 100
// usable keys per set (a larger set is refused, the last good one stays),
// so that no token costs more than a few signature checks.
//
// jwx parses the JWKS; tokens are split, decoded and their signatures
// checked here with the standard library over keys converted once per
// fetch, which costs little more than the signature check itself.
//
// Claims are read by exact, case-sensitive name; a token with a duplicate
// claim, or with a claim this package maps that has the wrong JSON type, is
// malformed. Tolerated, as real issuers send them: integer or fractional
// dates; "true"/"false" strings for booleans; a single string for aud,
// roles and amr; a space-separated string or an array for scope and scp.
// role is only compared with "anon". null counts as absent.
package jwks

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/httprc/v3/errsink"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/authresolver/authresolver/resolver"
)

// Errors returned by Verify and Refresh. A bad token is never an error but a
// resolver.Reason; these mean the issuer's keys cannot be used.
var (
	// ErrNoKeys means no key set has been fetched yet.
	ErrNoKeys = errors.New("jwks: no keys fetched yet")
	// ErrStale means the last successful fetch is older than MaxStaleness.
	ErrStale = errors.New("jwks: keys are stale")
	// ErrNotStarted means Start has not been called, or Close has.
	ErrNotStarted = errors.New("jwks: verifier not running")
)

const (
	defaultMinRefresh      = time.Minute
	defaultMaxRefresh      = time.Hour
	defaultRefetchCooldown = 10 * time.Second
	defaultMaxStaleness    = 24 * time.Hour

	// fetchTimeout bounds every JWKS fetch this package waits for.
	fetchTimeout = 10 * time.Second
	// maxJWKSSize bounds the JWKS document read.
	maxJWKSSize = 1 << 20
	// maxKeylessTries bounds the keys tried for a token without kid.
	maxKeylessTries = 8
)

// Options configure a Verifier. Issuer and URL are required.
type Options struct {
	// Issuer is the exact expected "iss".
	Issuer string
	// URL of the JWKS: https://, http:// for a loopback host only, or
	// file:// with an absolute path. Required unless LateURL.
	URL string
	// LateURL: URL is empty because the issuer's JWKS URL is discovered
	// later; SetURL sets it, then Start. Until then Verify fails with
	// ErrNoKeys.
	LateURL bool
	// Audiences: a token must carry at least one of them in "aud".
	// Empty means aud is not checked.
	Audiences []string
	// Algorithms is the allow-list of JWS algorithms, default RS256, ES256,
	// EdDSA. Allowed: RS256/384/512, PS256/384/512, ES256/384/512, EdDSA;
	// "none" and HMAC are refused.
	Algorithms []string
	// Leeway is the clock skew allowed on exp, nbf and iat; zero allows
	// none.
	Leeway time.Duration
	// Type, when set, is the required JOSE "typ" header, e.g. "at+jwt",
	// compared case-insensitively and with or without "application/".
	Type string
	// ExtraClaims are claim names whose values go to Identity.Claims.
	ExtraClaims []string
	// HTTPClient fetches http(s) URLs; nil means a client with a 10s
	// overall timeout and dial/TLS timeouts. Each fetch is bounded by 10s
	// whatever the client, and follows at most 3 redirects, each to the
	// URL's own scheme and host (a copy of the client is used, with that
	// CheckRedirect). file:// URLs are always read with the built-in
	// client.
	HTTPClient *http.Client
	// MinRefresh and MaxRefresh bound the refresh interval taken from the
	// JWKS response's Cache-Control max-age (default 1m and 1h); without
	// max-age the JWKS is refreshed every MinRefresh.
	MinRefresh, MaxRefresh time.Duration
	// RefetchCooldown is the least time between two refetches forced by
	// an unknown key id, or by missing or stale keys (default 10s).
	RefetchCooldown time.Duration
	// MaxStaleness is how long after the last successful fetch the key set
	// is still used while refreshes fail (default 24h). Past it, Verify
	// returns ErrStale and Ready reports false.
	MaxStaleness time.Duration
	// Logger receives refresh failures and key set changes; never tokens.
	Logger *slog.Logger
	// Metrics, if not nil, records fetches and key set age.
	Metrics *Metrics
	// Now is the clock, default time.Now.
	Now func() time.Time
}

// Verifier verifies the tokens of one issuer against its JWKS.
type Verifier struct {
	issuer     string
	url        string
	audiences  []string
	algs       algorithmSet
	leeway     time.Duration
	typ        string
	extra      []string
	client     httprc.HTTPClient
	minRefresh time.Duration
	maxRefresh time.Duration
	staleness  time.Duration
	log        *slog.Logger
	metrics    *Metrics
	now        func() time.Time

	keys    atomic.Pointer[keySet]
	fetched atomic.Int64 // Now of the last successful fetch, Unix ns; 0 = never

	limiter *rate.Limiter
	flight  singleflight.Group

	firstOnce sync.Once
	first     chan struct{} // closed after the first fetch attempt

	mu      sync.Mutex
	started bool
	ctrl    httprc.Controller // nil before Start and after Close
	res     *httprc.ResourceBase[*keySet]
	stop    context.CancelFunc // ends the background refresh
	closed  chan struct{}      // closed by Close: ends waits on a refresh
}

var (
	_ resolver.TokenVerifier = (*Verifier)(nil)
	_ resolver.TokenVerifier = (*Set)(nil)
)

// New returns a Verifier for opts. It checks the options and does no I/O;
// Start begins fetching.
func New(opts Options) (*Verifier, error) {
	if opts.Issuer == "" {
		return nil, errors.New("jwks: issuer is empty")
	}
	var u *url.URL
	if opts.URL != "" || !opts.LateURL {
		var err error
		if u, err = checkURL(opts.URL); err != nil {
			return nil, err
		}
	}
	v := &Verifier{
		issuer:     opts.Issuer,
		url:        opts.URL,
		audiences:  slices.Clone(opts.Audiences),
		leeway:     opts.Leeway,
		typ:        trimApplication(opts.Type),
		extra:      slices.Clone(opts.ExtraClaims),
		minRefresh: orDefault(opts.MinRefresh, defaultMinRefresh),
		maxRefresh: orDefault(opts.MaxRefresh, defaultMaxRefresh),
		staleness:  orDefault(opts.MaxStaleness, defaultMaxStaleness),
		log:        opts.Logger,
		metrics:    opts.Metrics,
		now:        opts.Now,
		first:      make(chan struct{}),
		closed:     make(chan struct{}),
	}
	algs := opts.Algorithms
	if len(algs) == 0 {
		algs = []string{"RS256", "ES256", "EdDSA"}
	}
	for _, name := range algs {
		a := parseAlgorithm(name)
		if a == algUnknown {
			return nil, algorithmError(name)
		}
		v.algs.add(a)
	}
	switch {
	case opts.Leeway < 0:
		return nil, fmt.Errorf("jwks: negative leeway %s", opts.Leeway)
	case opts.MinRefresh < 0 || opts.MaxRefresh < 0 || opts.RefetchCooldown < 0 || opts.MaxStaleness < 0:
		return nil, errors.New("jwks: negative refresh interval, cooldown or staleness")
	case v.minRefresh > v.maxRefresh:
		return nil, fmt.Errorf("jwks: MinRefresh %s exceeds MaxRefresh %s", v.minRefresh, v.maxRefresh)
	}
	for _, a := range opts.Audiences {
		if a == "" {
			return nil, errors.New("jwks: empty audience")
		}
	}
	client := newHTTPClient()
	if opts.HTTPClient != nil && (u == nil || u.Scheme != "file") {
		c := *opts.HTTPClient // a copy: the caller's client keeps its own policy
		client = &c
	}
	client.CheckRedirect = checkRedirect
	v.client = timeoutClient{client}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	v.log = v.log.With(slog.String("issuer", v.issuer))
	if v.now == nil {
		v.now = time.Now
	}
	v.limiter = rate.NewLimiter(rate.Every(orDefault(opts.RefetchCooldown, defaultRefetchCooldown)), 1)
	return v, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func algorithmError(name string) error {
	switch {
	case strings.EqualFold(name, "none"):
		return errors.New(`jwks: algorithm "none" is never allowed`)
	case strings.HasPrefix(strings.ToUpper(name), "HS"):
		return fmt.Errorf("jwks: HMAC algorithm %q is never allowed: a JWKS holds public keys", name)
	}
	return fmt.Errorf("jwks: unsupported algorithm %q (want RS256/384/512, PS256/384/512, ES256/384/512 or EdDSA)", name)
}

// CheckURL reports whether s is a JWKS URL New accepts: https://,
// http:// to a loopback host (localhost, *.localhost, 127.0.0.0/8, ::1),
// or file:///absolute/path. Configuration calls it to refuse a URL at
// start-up, naming where it came from.
func CheckURL(s string) error {
	_, err := checkURL(s)
	return err
}

func checkURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("jwks: JWKS URL: %w", err)
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return nil, fmt.Errorf("jwks: JWKS URL %q has no host", s)
		}
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("jwks: JWKS URL %q: http:// is allowed for loopback hosts only, use https://", s)
		}
	case "file":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			return nil, fmt.Errorf("jwks: JWKS URL %q: want file:///absolute/path", s)
		}
	default:
		return nil, fmt.Errorf("jwks: JWKS URL %q: want https://, http:// (loopback) or file://", s)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newHTTPClient returns the client used when Options.HTTPClient is nil: it
// times out (http.DefaultClient never does) and also serves file:// URLs,
// so that files go through the same cache and refresh path.
func newHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 5 * time.Second
	tr.ResponseHeaderTimeout = fetchTimeout
	// G111: the root is on purpose; a file:// JWKS URL names an absolute
	// path, set by the operator, and redirects never lead here
	// (checkRedirect keeps the scheme).
	tr.RegisterProtocol("file", http.NewFileTransport(http.Dir("/"))) //nolint:gosec // G111, see above
	return &http.Client{Timeout: fetchTimeout, Transport: tr}
}

// maxRedirects bounds the redirects followed for one JWKS fetch.
const maxRedirects = 3

// errRedirect is returned for a redirect checkRedirect refuses.
var errRedirect = errors.New("jwks: redirect refused")

// checkRedirect follows a redirect only to the scheme and host (with port)
// of the configured URL, at most maxRedirects times: the URL was checked
// at start-up (https, or http to loopback), and a redirect must not take
// the fetch elsewhere — from a loopback http:// JWKS to another host, or
// to file:// through the transport that serves files.
func checkRedirect(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	switch {
	case len(via) > maxRedirects:
		return fmt.Errorf("%w: more than %d redirects", errRedirect, maxRedirects)
	case req.URL.Scheme != first.Scheme || !strings.EqualFold(req.URL.Host, first.Host):
		return fmt.Errorf("%w: %s://%s is not the JWKS URL's scheme and host", errRedirect, req.URL.Scheme, req.URL.Host)
	}
	return nil
}

// timeoutClient bounds every request by fetchTimeout, also with an
// injected client that has no timeout of its own: httprc sends background
// requests with a context that never expires, and a hanging fetch would
// stall the refresh worker.
type timeoutClient struct{ c *http.Client }

func (t timeoutClient) Do(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), fetchTimeout)
	// G704: the URL is the configured JWKS URL (CheckURL), redirects stay
	// on its scheme and host (checkRedirect).
	res, err := t.c.Do(req.WithContext(ctx)) //nolint:gosec // G704, see above
	if err != nil {
		cancel()
		return nil, err
	}
	// The body is read after Do returns, so the timeout ends when it is
	// closed.
	res.Body = cancelOnClose{res.Body, cancel}
	return res, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// SetURL sets the JWKS URL of a Verifier created without one, once its
// issuer's configuration has been discovered; Start must follow. The URL
// must be https:// or http:// on a loopback host (a file:// URL is never
// discovered).
func (v *Verifier) SetURL(raw string) error {
	u, err := checkURL(raw)
	if err != nil {
		return err
	}
	if u.Scheme == "file" {
		return fmt.Errorf("jwks: JWKS URL %q: a discovered URL must be http(s)", raw)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.url != "" {
		return errors.New("jwks: JWKS URL already set")
	}
	v.url = raw
	return nil
}

// Issuer returns the issuer v verifies tokens of.
func (v *Verifier) Issuer() string { return v.issuer }

// Start begins the background refresh and waits for the first fetch, at
// most until ctx is done or the fetch timeout (10s) passes. A failed first
// fetch is logged, not returned: the process starts, Ready reports false
// and Verify returns ErrNoKeys until a fetch succeeds. The background
// refresh runs until Close, not until ctx is done: a server passes its
// signal context to stop waiting at start-up, and keeps refreshing while
// it drains. Start returns an error only if the refresh cannot be set up
// or v was already started.
//
// The refresh runs on httprc directly rather than through jwk.Cache, which
// is a thin wrapper around it: jwk.Cache builds its own transformer and
// reports failures only, while this package needs to know when a fetch
// succeeds (for MaxStaleness, Ready and the key set age) and converts each
// fetched set into verification keys once, in its own transformer.
func (v *Verifier) Start(ctx context.Context) error {
	v.mu.Lock()
	if v.started {
		v.mu.Unlock()
		return errors.New("jwks: verifier already started")
	}
	if v.url == "" {
		v.mu.Unlock()
		return errors.New("jwks: no JWKS URL: SetURL first")
	}
	v.started = true
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	client := httprc.NewClient(
		httprc.WithWorkers(1), // serializes background and forced fetches
		httprc.WithHTTPClient(v.client),
		httprc.WithErrorSink(errsink.NewFunc(v.backgroundFailed)),
	)
	ctrl, err := client.Start(runCtx)
	if err != nil {
		v.mu.Unlock()
		stop()
		return fmt.Errorf("jwks: start refresh: %w", err)
	}
	res, err := httprc.NewResource[*keySet](v.url, httprc.TransformFunc[*keySet](v.transform),
		httprc.WithHTTPClient(v.client),
		httprc.WithMinInterval(v.minRefresh),
		httprc.WithMaxInterval(v.maxRefresh),
	)
	if err == nil {
		err = ctrl.Add(runCtx, res, httprc.WithWaitReady(false))
	}
	if err != nil {
		v.mu.Unlock()
		stop()
		_ = ctrl.Shutdown(time.Second)
		return fmt.Errorf("jwks: register %s: %w", v.url, err)
	}
	v.ctrl, v.res, v.stop = ctrl, res, stop
	v.mu.Unlock()
	v.metrics.add(v)

	t := time.NewTimer(fetchTimeout)
	defer t.Stop()
	select {
	case <-v.first:
	case <-ctx.Done():
	case <-t.C:
	}
	if !v.Ready() {
		v.log.WarnContext(ctx, "jwks: no keys yet; tokens of this issuer get 503 until a fetch succeeds", slog.String("url", v.url))
	}
	return nil
}

// Close stops the background refresh and ends the waits of refreshes in
// flight. The keys already fetched stay usable until they are stale;
// refetches fail with ErrNotStarted.
func (v *Verifier) Close() {
	v.mu.Lock()
	ctrl, stop := v.ctrl, v.stop
	v.ctrl = nil
	v.mu.Unlock()
	if ctrl == nil {
		return
	}
	close(v.closed)
	stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = ctrl.ShutdownContext(ctx)
	v.metrics.remove(v)
}

// Ready reports whether v has keys that are not past MaxStaleness.
func (v *Verifier) Ready() bool {
	_, err := v.usableKeys()
	return err == nil
}

// fetchedAt returns the time of the last successful fetch.
func (v *Verifier) fetchedAt() (time.Time, bool) {
	ns := v.fetched.Load()
	if ns == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// usableKeys returns the key set, or ErrNoKeys or ErrStale.
func (v *Verifier) usableKeys() (*keySet, error) {
	ks := v.keys.Load()
	at, ok := v.fetchedAt()
	switch {
	case ks == nil || !ok:
		return nil, ErrNoKeys
	case v.now().Sub(at) > v.staleness:
		return nil, ErrStale
	}
	return ks, nil
}

// Refresh fetches the JWKS now, waiting at most until ctx is done or the
// fetch timeout passes. It is not rate-limited. On failure the current
// keys stay in use and the error is returned.
func (v *Verifier) Refresh(ctx context.Context) error {
	v.mu.Lock()
	ctrl := v.ctrl
	v.mu.Unlock()
	if ctrl == nil {
		return ErrNotStarted
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	go func() {
		select {
		case <-v.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := ctrl.Refresh(ctx, v.url); err != nil {
		err = fmt.Errorf("jwks: fetch %s: %w", v.url, err)
		v.fetchFailed(ctx, err)
		return err
	}
	return nil
}

// transform turns a fetched JWKS document into a key set and installs it.
// httprc calls it for every 200 response, background or forced, one at a
// time (one worker); what it returns is stored by httprc too, but v reads
// its own copy. An unchanged document is not parsed again.
func (v *Verifier) transform(ctx context.Context, res *http.Response) (*keySet, error) {
	body, err := io.ReadAll(io.LimitReader(res.Body, maxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("jwks: fetch %s: %w", v.url, err)
	}
	if len(body) > maxJWKSSize {
		return nil, fmt.Errorf("jwks: fetch %s: document exceeds %d bytes", v.url, maxJWKSSize)
	}
	digest := sha256.Sum256(body)
	prev := v.keys.Load()
	ks := prev
	if prev == nil || prev.digest != digest {
		// Keys jwx cannot parse (say, a post-quantum key) are kept as
		// placeholders that convertSet skips, instead of failing the set.
		set, err := jwk.Parse(body, jwk.WithStrictKeySetParsing(false))
		if err != nil {
			return nil, fmt.Errorf("jwks: parse %s: %w", v.url, err)
		}
		ks, err = convertSet(ctx, set, v.log)
		if err != nil {
			return nil, fmt.Errorf("jwks: %s: %w", v.url, err)
		}
		if len(ks.all) == 0 {
			// More likely a broken deployment than an issuer that retired
			// all its keys: keep the last good set.
			return nil, fmt.Errorf("jwks: %s holds no usable signature keys", v.url)
		}
		ks.digest = digest
		v.keys.Store(ks)
		if prev == nil || !sameKeyIDs(prev, ks) {
			v.log.InfoContext(ctx, "jwks: key set loaded", slog.Int("keys", len(ks.all)), slog.Any("kids", keyIDs(ks)))
		}
	}
	v.fetched.Store(v.now().UnixNano())
	v.metrics.refreshed(v.issuer, outcomeSuccess)
	v.metrics.setKeys(v.issuer, len(ks.all))
	v.firstOnce.Do(func() { close(v.first) })
	return ks, nil
}

// backgroundFailed is httprc's error sink: failures of background fetches.
func (v *Verifier) backgroundFailed(ctx context.Context, err error) {
	v.fetchFailed(ctx, err)
}

func (v *Verifier) fetchFailed(ctx context.Context, err error) {
	v.metrics.refreshed(v.issuer, outcomeError)
	v.log.WarnContext(ctx, "jwks: refresh failed; keeping the last key set", slog.String("url", v.url), slog.Any("error", err))
	v.firstOnce.Do(func() { close(v.first) })
}

func keyIDs(ks *keySet) []string {
	ids := make([]string, 0, len(ks.all))
	for _, k := range ks.all {
		ids = append(ids, k.kid)
	}
	return ids
}

func sameKeyIDs(a, b *keySet) bool {
	if len(a.all) != len(b.all) {
		return false
	}
	for i := range a.all {
		if a.all[i].kid != b.all[i].kid {
			return false
		}
	}
	return true
}

// refetch fetches the JWKS for a token that names an unknown key, or when
// there are no usable keys. Concurrent callers share one fetch, and at most
// one fetch per RefetchCooldown happens; the others find the current keys.
// The fetch is not cancelled when one caller gives up (others may wait on
// it), but each caller stops waiting when its ctx is done.
func (v *Verifier) refetch(ctx context.Context) error {
	ch := v.flight.DoChan("", func() (any, error) {
		if !v.limiter.AllowN(v.now(), 1) {
			v.metrics.forcedRefetch(v.issuer, outcomeRateLimited)
			return nil, nil
		}
		err := v.Refresh(context.WithoutCancel(ctx))
		if err != nil {
			v.metrics.forcedRefetch(v.issuer, outcomeError)
			return nil, err
		}
		v.metrics.forcedRefetch(v.issuer, outcomeSuccess)
		return nil, nil
	})
	select {
	case <-ctx.Done():
		return fmt.Errorf("jwks: refetch: %w", ctx.Err())
	case <-ch:
		return nil
	}
}

// Verify verifies token and returns the identity it carries. A token that
// is not acceptable gets a Reason (resolver.ReasonUnknownIssuer if it is not
// of v's issuer). The error is ErrNoKeys or ErrStale (wrapped) when v has
// no usable keys for a token of its issuer, or the ctx error when ctx ends
// during a refetch.
func (v *Verifier) Verify(ctx context.Context, token string) (resolver.Identity, resolver.Reason, error) {
	var t parsedToken
	if r := t.parse(token); r != resolver.ReasonNone {
		return resolver.Identity{}, r, nil
	}
	return v.verify(ctx, &t)
}

func (v *Verifier) verify(ctx context.Context, t *parsedToken) (resolver.Identity, resolver.Reason, error) {
	c := &t.claims
	if c.iss != v.issuer {
		return resolver.Identity{}, resolver.ReasonUnknownIssuer, nil
	}
	alg := parseAlgorithm(t.header.alg)
	if !v.algs.has(alg) {
		return resolver.Identity{}, resolver.ReasonAlgorithm, nil
	}
	if v.typ != "" && !strings.EqualFold(trimApplication(t.header.typ), v.typ) {
		return resolver.Identity{}, resolver.ReasonTokenType, nil
	}
	if r, err := v.checkSignature(ctx, t, alg); r != resolver.ReasonNone || err != nil {
		return resolver.Identity{}, r, err
	}
	if r := v.checkClaims(c); r != resolver.ReasonNone {
		return resolver.Identity{}, r, nil
	}
	id := c.identity()
	id.Issuer = v.issuer // equal; shared, so a cached identity keeps no copy
	if len(v.extra) > 0 {
		id.Claims = extraClaims(t.payload, v.extra)
	}
	return id, resolver.ReasonNone, nil
}

// checkSignature finds the key for t and checks its signature.
func (v *Verifier) checkSignature(ctx context.Context, t *parsedToken, alg algorithm) (resolver.Reason, error) {
	ks, err := v.usableKeys()
	if err != nil {
		if rerr := v.refetch(ctx); rerr != nil {
			return resolver.ReasonNone, rerr
		}
		if ks, err = v.usableKeys(); err != nil {
			return resolver.ReasonNone, fmt.Errorf("jwks: %s: %w", v.issuer, err)
		}
	}
	kid := t.header.kid
	if kid == "" {
		// No kid: try the few keys that fit the algorithm.
		tried := 0
		for _, k := range ks.all {
			if !k.accepts(alg) {
				continue
			}
			if k.verify(alg, t.signingInput, t.sig) {
				return resolver.ReasonNone, nil
			}
			if tried++; tried == maxKeylessTries {
				break
			}
		}
		if tried == 0 {
			return resolver.ReasonUnknownKey, nil
		}
		return resolver.ReasonSignature, nil
	}
	keys := ks.lookup(kid)
	if len(keys) == 0 {
		if err := v.refetch(ctx); err != nil {
			return resolver.ReasonNone, err
		}
		if ks, err = v.usableKeys(); err != nil {
			return resolver.ReasonNone, fmt.Errorf("jwks: %s: %w", v.issuer, err)
		}
		if keys = ks.lookup(kid); len(keys) == 0 {
			return resolver.ReasonUnknownKey, nil
		}
	}
	fits := false
	for _, k := range keys {
		if !k.accepts(alg) {
			continue
		}
		fits = true
		if k.verify(alg, t.signingInput, t.sig) {
			return resolver.ReasonNone, nil
		}
	}
	if !fits {
		return resolver.ReasonAlgorithm, nil
	}
	return resolver.ReasonSignature, nil
}

// checkClaims checks the time claims, sub and aud of a token whose
// signature is valid.
func (v *Verifier) checkClaims(c *claims) resolver.Reason {
	now := v.now()
	switch {
	case c.has&hasExp == 0:
		return resolver.ReasonMissingClaim
	case !now.Before(c.exp.Add(v.leeway)):
		return resolver.ReasonExpired
	case c.has&hasNbf != 0 && now.Add(v.leeway).Before(c.nbf):
		return resolver.ReasonNotYetValid
	case c.has&hasIat != 0 && now.Add(v.leeway).Before(c.iat):
		return resolver.ReasonIssuedInFuture
	case c.sub == "":
		return resolver.ReasonMissingClaim
	}
	if len(v.audiences) == 0 {
		return resolver.ReasonNone
	}
	for _, a := range c.aud {
		for _, want := range v.audiences {
			if a == want {
				return resolver.ReasonNone
			}
		}
	}
	return resolver.ReasonAudience
}

// trimApplication strips a case-insensitive "application/" prefix from a
// media type, as "typ" may omit it (RFC 7515 §4.1.9).
func trimApplication(typ string) string {
	const prefix = "application/"
	if len(typ) > len(prefix) && strings.EqualFold(typ[:len(prefix)], prefix) {
		return typ[len(prefix):]
	}
	return typ
}
