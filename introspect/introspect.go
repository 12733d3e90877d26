// Package introspect asks an OAuth 2.0 Token Introspection endpoint
// (RFC 7662) about opaque bearer tokens, authenticating with
// client_secret_basic, and reads only well-formed answers: active must be
// the JSON literal true, sub present, exp/nbf/iat valid with the leeway,
// aud one of the configured audiences. Anything else the endpoint answers
// (a 500, HTML, an array, "active": "true", a hang) is an error, which the
// resolver answers 503: never an allow.
package introspect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/authresolver/authresolver/internal/remote"
	"github.com/authresolver/authresolver/resolver"
)

// ErrInvalidAnswer means the endpoint answered something that is not an
// RFC 7662 introspection response.
var ErrInvalidAnswer = errors.New("introspect: not an RFC 7662 answer")

// maxAnswer bounds the introspection answer read.
const maxAnswer = 64 << 10

// Options configure a Client. URL, ClientID and ClientSecret are required.
type Options struct {
	// URL of the introspection endpoint: https://, or http:// for a
	// loopback host. Tokens are sent there and nowhere else (redirects are
	// not followed).
	URL string
	// ClientID and ClientSecret authenticate with HTTP Basic
	// (client_secret_basic, RFC 6749 §2.3.1).
	ClientID, ClientSecret string
	// Audiences: an active token's aud must hold one of them. Empty means
	// aud is not checked.
	Audiences []string
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway time.Duration
	// ExtraClaims are member names whose values go to Identity.Claims.
	ExtraClaims []string
	// Timeout bounds each call (default remote.DefaultTimeout).
	Timeout time.Duration
	// HTTPClient sends the calls; nil means one that times out and never
	// follows redirects.
	HTTPClient *http.Client
	// Metrics, if not nil, counts the calls.
	Metrics *remote.Metrics
	// Now is the clock, default time.Now.
	Now func() time.Time
}

// Client introspects tokens at one endpoint.
type Client struct {
	url       string
	auth      string // the Authorization header value
	audiences []string
	leeway    time.Duration
	extra     []string
	timeout   time.Duration
	http      *http.Client
	metrics   *remote.Metrics
	now       func() time.Time
}

var _ resolver.Introspector = (*Client)(nil)

// New returns a Client for opts. It checks the options and does no I/O.
func New(opts Options) (*Client, error) {
	if err := remote.CheckURL(opts.URL); err != nil {
		return nil, fmt.Errorf("introspect: %w", err)
	}
	if opts.ClientID == "" || opts.ClientSecret == "" {
		return nil, errors.New("introspect: client ID and secret are required")
	}
	if opts.Leeway < 0 || opts.Timeout < 0 {
		return nil, errors.New("introspect: negative leeway or timeout")
	}
	if slices.Contains(opts.Audiences, "") {
		return nil, errors.New("introspect: empty audience")
	}
	c := &Client{
		url:       opts.URL,
		auth:      basicAuth(opts.ClientID, opts.ClientSecret),
		audiences: slices.Clone(opts.Audiences),
		leeway:    opts.Leeway,
		extra:     slices.Clone(opts.ExtraClaims),
		timeout:   opts.Timeout,
		http:      opts.HTTPClient,
		metrics:   opts.Metrics,
		now:       opts.Now,
	}
	if c.timeout == 0 {
		c.timeout = remote.DefaultTimeout
	}
	if c.http == nil {
		c.http = remote.NewHTTPClient(c.timeout)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// basicAuth encodes client credentials as RFC 6749 §2.3.1 asks: each
// form-urlencoded, then joined and base64-encoded as HTTP Basic.
func basicAuth(id, secret string) string {
	r := http.Request{Header: http.Header{}}
	r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return r.Header.Get("Authorization")
}

// Introspect asks the endpoint about token. See resolver.Introspector for
// the contract.
func (c *Client) Introspect(ctx context.Context, token string) (resolver.Identity, resolver.Reason, error) {
	start := time.Now()
	id, reason, outcome, err := c.introspect(ctx, token)
	c.metrics.Observe(remote.KindIntrospection, outcome, start)
	return id, reason, err
}

func (c *Client) introspect(ctx context.Context, token string) (resolver.Identity, resolver.Reason, string, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, strings.NewReader(form.Encode()))
	if err != nil {
		return resolver.Identity{}, resolver.ReasonNone, remote.OutcomeError, fmt.Errorf("introspect: %w", err)
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	ans, err := remote.Do(c.http, req, c.timeout, maxAnswer)
	if err != nil {
		return resolver.Identity{}, resolver.ReasonNone, remote.Outcome(err), fmt.Errorf("introspect: %w", err)
	}
	if ans.Status != http.StatusOK {
		return resolver.Identity{}, resolver.ReasonNone, remote.OutcomeError, fmt.Errorf("introspect: endpoint answered %d", ans.Status)
	}
	if !remote.IsJSON(ans.Header) {
		return resolver.Identity{}, resolver.ReasonNone, remote.OutcomeInvalid, fmt.Errorf("%w: content type %q", ErrInvalidAnswer, ans.Header.Get("Content-Type"))
	}
	id, reason, err := c.read(ans.Body)
	switch {
	case err != nil:
		return resolver.Identity{}, resolver.ReasonNone, remote.OutcomeInvalid, err
	case reason != resolver.ReasonNone:
		return resolver.Identity{}, reason, remote.OutcomeRejected, nil
	}
	return id, resolver.ReasonNone, remote.OutcomeOK, nil
}

// read checks an answer's body and maps an active token to an Identity.
func (c *Client) read(body []byte) (resolver.Identity, resolver.Reason, error) {
	obj, err := remote.ParseObject(body)
	if err != nil {
		return resolver.Identity{}, resolver.ReasonNone, fmt.Errorf("%w: %w", ErrInvalidAnswer, err)
	}
	switch string(obj["active"]) {
	case "true":
	case "false":
		return resolver.Identity{}, resolver.ReasonTokenInactive, nil
	default:
		// Absent, a string "true", 1, null: not RFC 7662.
		return resolver.Identity{}, resolver.ReasonNone, fmt.Errorf("%w: active is not a JSON boolean", ErrInvalidAnswer)
	}
	id, err := obj.Identity()
	if err != nil {
		return resolver.Identity{}, resolver.ReasonNone, fmt.Errorf("%w: %w", ErrInvalidAnswer, err)
	}
	aud, _, err := obj.Strings("aud", false)
	if err != nil {
		return resolver.Identity{}, resolver.ReasonNone, fmt.Errorf("%w: %w", ErrInvalidAnswer, err)
	}
	nbf, hasNbf, err := obj.Date("nbf")
	if err != nil {
		return resolver.Identity{}, resolver.ReasonNone, fmt.Errorf("%w: %w", ErrInvalidAnswer, err)
	}
	_, hasIat := obj["iat"]
	now := c.now()
	switch {
	case id.UserID == "":
		return resolver.Identity{}, resolver.ReasonMissingClaim, nil
	case !id.ExpiresAt.IsZero() && !now.Before(id.ExpiresAt.Add(c.leeway)):
		return resolver.Identity{}, resolver.ReasonExpired, nil
	case hasNbf && now.Add(c.leeway).Before(nbf):
		return resolver.Identity{}, resolver.ReasonNotYetValid, nil
	case hasIat && now.Add(c.leeway).Before(id.IssuedAt):
		return resolver.Identity{}, resolver.ReasonIssuedInFuture, nil
	case len(c.audiences) > 0 && !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(c.audiences, a) }):
		return resolver.Identity{}, resolver.ReasonAudience, nil
	}
	id.Credential = resolver.CredentialOpaque
	id.Claims = obj.Claims(c.extra)
	return id, resolver.ReasonNone, nil
}
