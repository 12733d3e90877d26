// Package discovery reads an OpenID provider's configuration from
// <issuer>/.well-known/openid-configuration (OpenID Connect Discovery 1.0),
// so that an issuer is configured by its URL alone. The document's issuer
// must equal the configured one exactly (§4.3), and every endpoint taken
// from it must be https:// (or http:// on a loopback host). Run retries in
// the background while the provider is down at start-up.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/authresolver/authresolver/internal/remote"
)

// Errors of Fetch, wrapped.
var (
	// ErrIssuerMismatch means the document names another issuer: it must
	// not be used (an attacker's document could point at its own keys).
	ErrIssuerMismatch = errors.New("discovery: the document's issuer is not the configured one")
	// ErrInvalidDocument means the answer is not a usable configuration.
	ErrInvalidDocument = errors.New("discovery: not an OpenID provider configuration")
)

// maxDocument bounds the configuration document read.
const maxDocument = 256 << 10

// Document holds what authresolver uses of a provider's configuration.
// Endpoints the provider does not advertise are empty.
type Document struct {
	Issuer                string
	JWKSURI               string
	UserinfoEndpoint      string
	IntrospectionEndpoint string
}

// Options configure Fetch and Run. Issuer is required.
type Options struct {
	// Issuer is the exact issuer identifier, e.g. https://idp.example or
	// https://idp.example/realms/main.
	Issuer string
	// Timeout bounds each fetch (default 10s, as JWKS fetches).
	Timeout time.Duration
	// HTTPClient fetches; nil means one that times out and never follows
	// redirects.
	HTTPClient *http.Client
	// RetryMin and RetryMax bound the wait between attempts of Run, which
	// doubles from RetryMin (default 1s) up to RetryMax (default 30s).
	RetryMin, RetryMax time.Duration
	// Metrics, if not nil, counts the fetches.
	Metrics *remote.Metrics
	// Logger receives failed attempts of Run.
	Logger *slog.Logger
}

// URL returns the configuration document's URL for issuer (§4: a trailing
// slash of the issuer is removed before the well-known path is added).
func URL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
}

// Fetch gets and checks the configuration of opts.Issuer once.
func Fetch(ctx context.Context, opts Options) (Document, error) {
	if err := remote.CheckURL(opts.Issuer); err != nil {
		return Document{}, fmt.Errorf("discovery: issuer: %w", err)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	client := opts.HTTPClient
	if client == nil {
		client = remote.NewHTTPClient(timeout)
	}
	start := time.Now()
	doc, outcome, err := fetch(ctx, client, opts.Issuer, timeout)
	opts.Metrics.Observe(remote.KindDiscovery, outcome, start)
	return doc, err
}

func fetch(ctx context.Context, client *http.Client, issuer string, timeout time.Duration) (Document, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, URL(issuer), nil)
	if err != nil {
		return Document{}, remote.OutcomeError, fmt.Errorf("discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	ans, err := remote.Do(client, req, timeout, maxDocument)
	if err != nil {
		return Document{}, remote.Outcome(err), fmt.Errorf("discovery: %s: %w", URL(issuer), err)
	}
	if ans.Status != http.StatusOK {
		return Document{}, remote.OutcomeError, fmt.Errorf("discovery: %s answered %d", URL(issuer), ans.Status)
	}
	if !remote.IsJSON(ans.Header) {
		return Document{}, remote.OutcomeInvalid, fmt.Errorf("%w: content type %q", ErrInvalidDocument, ans.Header.Get("Content-Type"))
	}
	doc, err := read(ans.Body, issuer)
	if err != nil {
		return Document{}, remote.OutcomeInvalid, err
	}
	return doc, remote.OutcomeOK, nil
}

func read(body []byte, issuer string) (Document, error) {
	obj, err := remote.ParseObject(body)
	if err != nil {
		return Document{}, fmt.Errorf("%w: %w", ErrInvalidDocument, err)
	}
	var doc Document
	var errs [4]error
	doc.Issuer, _, errs[0] = obj.String("issuer")
	doc.JWKSURI, _, errs[1] = obj.String("jwks_uri")
	doc.UserinfoEndpoint, _, errs[2] = obj.String("userinfo_endpoint")
	doc.IntrospectionEndpoint, _, errs[3] = obj.String("introspection_endpoint")
	if err := errors.Join(errs[:]...); err != nil {
		return Document{}, fmt.Errorf("%w: %w", ErrInvalidDocument, err)
	}
	if doc.Issuer != issuer {
		return Document{}, fmt.Errorf("%w: document %q, configured %q", ErrIssuerMismatch, doc.Issuer, issuer)
	}
	if doc.JWKSURI == "" {
		return Document{}, fmt.Errorf("%w: no jwks_uri", ErrInvalidDocument)
	}
	for name, u := range map[string]string{"jwks_uri": doc.JWKSURI, "userinfo_endpoint": doc.UserinfoEndpoint, "introspection_endpoint": doc.IntrospectionEndpoint} {
		if u == "" {
			continue
		}
		if err := remote.CheckURL(u); err != nil {
			return Document{}, fmt.Errorf("%w: %s: %w", ErrInvalidDocument, name, err)
		}
	}
	return doc, nil
}

// Run fetches the configuration until it succeeds or ctx is done, waiting
// between attempts from RetryMin doubling up to RetryMax, and then calls
// ready with the document, once. A mismatched issuer is retried too: the
// provider may be mid-deployment, and nothing is trusted meanwhile.
func Run(ctx context.Context, opts Options, ready func(context.Context, Document)) {
	wait, most := opts.RetryMin, opts.RetryMax
	if wait <= 0 {
		wait = time.Second
	}
	if most <= 0 {
		most = 30 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for {
		doc, err := Fetch(ctx, opts)
		if err == nil {
			log.InfoContext(ctx, "discovery: provider configuration loaded", slog.String("issuer", opts.Issuer), slog.String("jwks_uri", doc.JWKSURI))
			ready(ctx, doc)
			return
		}
		log.WarnContext(ctx, "discovery: provider configuration unavailable; retrying", slog.String("issuer", opts.Issuer), slog.String("error", err.Error()), slog.Duration("retry_in", wait))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, most)
	}
}
