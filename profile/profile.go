// Package profile fetches fresh user profiles from the identity provider
// for tokens that have already been verified locally: the "REST API
// verification" of Stack Auth (GET /api/v1/users/me with the project's
// secret server key) and OpenID Connect UserInfo. The provider's answer
// is authoritative: 401, 403 and 404 mean it no longer accepts the token
// (resolver.ReasonTokenRejected); any other failure is an error, which the
// resolver answers 503.
package profile

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authresolver/authresolver/internal/remote"
	"github.com/authresolver/authresolver/resolver"
)

// ErrInvalidAnswer means the provider answered 200 with something that is
// not a profile: not a JSON object, no subject, or another user's.
var ErrInvalidAnswer = errors.New("profile: not a profile")

// DefaultStackAPIURL is Stack Auth's hosted API.
const DefaultStackAPIURL = "https://api.stack-auth.com"

// maxAnswer bounds the profile read (Stack's profile_image_url alone may
// hold a 100 KB data URL).
const maxAnswer = 512 << 10

// Options configure the Source of one issuer: UserinfoURL for OIDC
// UserInfo, or StackProjectID and StackSecretServerKey for Stack Auth.
type Options struct {
	// Issuer whose tokens this source is asked about.
	Issuer string
	// UserinfoURL is the OIDC UserInfo endpoint (https://, or http:// for
	// a loopback host); the token is sent as a Bearer token.
	UserinfoURL string
	// StackProjectID and StackSecretServerKey select Stack Auth's
	// users/me; StackAPIURL defaults to DefaultStackAPIURL.
	StackProjectID       string
	StackSecretServerKey string
	StackAPIURL          string
	// Always: every token of Issuer has its profile fetched, whatever the
	// route asks ("profile": "always").
	Always bool
	// ExtraClaims are profile member names whose values go to
	// Profile.Claims (for the claim headers).
	ExtraClaims []string
	// Timeout bounds each call (default remote.DefaultTimeout).
	Timeout time.Duration
	// HTTPClient sends the calls; nil means one that times out and never
	// follows redirects.
	HTTPClient *http.Client
	// Metrics, if not nil, counts the calls.
	Metrics *remote.Metrics
}

// Source fetches the profiles of one issuer's users.
type Source struct {
	issuer    string
	kind      string // remote.KindUserinfo or remote.KindStack
	url       string
	projectID string
	serverKey string
	always    bool
	extra     []string
	timeout   time.Duration
	http      *http.Client
	metrics   *remote.Metrics
}

// New returns the Source for opts. It checks the options and does no I/O.
func New(opts Options) (*Source, error) {
	s := &Source{
		issuer:  opts.Issuer,
		always:  opts.Always,
		extra:   slices.Clone(opts.ExtraClaims),
		timeout: opts.Timeout,
		http:    opts.HTTPClient,
		metrics: opts.Metrics,
	}
	switch {
	case opts.Issuer == "":
		return nil, errors.New("profile: issuer is empty")
	case opts.Timeout < 0:
		return nil, errors.New("profile: negative timeout")
	case opts.UserinfoURL != "" && opts.StackProjectID != "":
		return nil, errors.New("profile: both a UserInfo URL and a Stack project: choose one")
	case opts.UserinfoURL != "":
		s.kind, s.url = remote.KindUserinfo, opts.UserinfoURL
	case opts.StackProjectID != "":
		if opts.StackSecretServerKey == "" {
			return nil, errors.New("profile: Stack Auth needs the project's secret server key")
		}
		base := opts.StackAPIURL
		if base == "" {
			base = DefaultStackAPIURL
		}
		s.kind, s.url = remote.KindStack, strings.TrimRight(base, "/")+"/api/v1/users/me"
		s.projectID, s.serverKey = opts.StackProjectID, opts.StackSecretServerKey
	default:
		return nil, errors.New("profile: neither a UserInfo URL nor a Stack project")
	}
	if err := remote.CheckURL(s.url); err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	if s.timeout == 0 {
		s.timeout = remote.DefaultTimeout
	}
	if s.http == nil {
		s.http = remote.NewHTTPClient(s.timeout)
	}
	return s, nil
}

// Issuer returns the issuer s fetches profiles for.
func (s *Source) Issuer() string { return s.issuer }

// Fetch asks the provider for the profile of the user of token, whose
// verified identity is id. See resolver.ProfileSource for the contract.
func (s *Source) Fetch(ctx context.Context, id *resolver.Identity, token string) (resolver.Profile, resolver.Reason, error) {
	start := time.Now()
	p, reason, outcome, err := s.fetch(ctx, id, token)
	s.metrics.Observe(s.kind, outcome, start)
	return p, reason, err
}

func (s *Source) fetch(ctx context.Context, id *resolver.Identity, token string) (resolver.Profile, resolver.Reason, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return resolver.Profile{}, resolver.ReasonNone, remote.OutcomeError, fmt.Errorf("profile: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if s.kind == remote.KindStack {
		req.Header.Set("X-Stack-Access-Type", "server")
		req.Header.Set("X-Stack-Project-Id", s.projectID)
		req.Header.Set("X-Stack-Secret-Server-Key", s.serverKey)
		req.Header.Set("X-Stack-Access-Token", token)
	} else {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	ans, err := remote.Do(s.http, req, s.timeout, maxAnswer)
	if err != nil {
		return resolver.Profile{}, resolver.ReasonNone, remote.Outcome(err), fmt.Errorf("profile: %s: %w", s.kind, err)
	}
	switch ans.Status {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return resolver.Profile{}, resolver.ReasonTokenRejected, remote.OutcomeRejected, nil
	default:
		return resolver.Profile{}, resolver.ReasonNone, remote.OutcomeError, fmt.Errorf("profile: %s answered %d", s.kind, ans.Status)
	}
	if !remote.IsJSON(ans.Header) {
		return resolver.Profile{}, resolver.ReasonNone, remote.OutcomeInvalid, fmt.Errorf("%w: content type %q", ErrInvalidAnswer, ans.Header.Get("Content-Type"))
	}
	p, err := s.read(ans.Body, id)
	if err != nil {
		return resolver.Profile{}, resolver.ReasonNone, remote.OutcomeInvalid, err
	}
	return p, resolver.ReasonNone, remote.OutcomeOK, nil
}

// read maps a profile: Stack's users/me (id, primary_email_verified,
// is_anonymous, is_restricted) or OIDC UserInfo (sub, email_verified,
// is_anonymous, roles). The subject must be the token's (OIDC Core
// §5.3.2): another user's profile is never merged.
func (s *Source) read(body []byte, id *resolver.Identity) (resolver.Profile, error) {
	obj, err := remote.ParseObject(body)
	if err != nil {
		return resolver.Profile{}, fmt.Errorf("%w: %w", ErrInvalidAnswer, err)
	}
	subject, verified := "sub", "email_verified"
	if s.kind == remote.KindStack {
		subject, verified = "id", "primary_email_verified"
	}
	var p resolver.Profile
	var errs [4]error
	p.UserID, _, errs[0] = obj.String(subject)
	p.Verified, p.HasVerified, errs[1] = obj.Bool(verified)
	p.Anonymous, p.HasAnonymous, errs[2] = obj.Bool("is_anonymous")
	if s.kind == remote.KindStack {
		// A restricted user (onboarding not finished) is not verified,
		// whatever the email says.
		restricted, _, err := obj.Bool("is_restricted")
		errs[3] = err
		if restricted {
			p.Verified, p.HasVerified = false, true
		}
	} else {
		p.Roles, _, errs[3] = obj.Strings("roles", false)
	}
	if err := errors.Join(errs[:]...); err != nil {
		return resolver.Profile{}, fmt.Errorf("%w: %w", ErrInvalidAnswer, err)
	}
	if p.UserID == "" || p.UserID != id.UserID {
		return resolver.Profile{}, fmt.Errorf("%w: its %s is not the token's subject", ErrInvalidAnswer, subject)
	}
	p.Claims = obj.Claims(s.extra)
	return p, nil
}

// Set routes profile requests to the Source of the token's issuer. Sources
// may be added while it is in use (an issuer's UserInfo endpoint is known
// once it has been discovered); reads take no lock.
type Set struct {
	mu       sync.Mutex // serialises Add
	byIssuer atomic.Pointer[map[string]*Source]
}

var _ resolver.ProfileSource = (*Set)(nil)

// NewSet returns a Set of sources; configuration must have refused two
// sources for one issuer (NewSet panics).
func NewSet(sources ...*Source) *Set {
	s := &Set{}
	s.byIssuer.Store(&map[string]*Source{})
	for _, src := range sources {
		if err := s.Add(src); err != nil {
			panic(err)
		}
	}
	return s
}

// Add adds src, unless its issuer has a source already.
func (s *Set) Add(src *Source) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.byIssuer.Load()
	if _, dup := old[src.issuer]; dup {
		return fmt.Errorf("profile: two sources for issuer %q", src.issuer)
	}
	m := make(map[string]*Source, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[src.issuer] = src
	s.byIssuer.Store(&m)
	return nil
}

func (s *Set) source(issuer string) *Source { return (*s.byIssuer.Load())[issuer] }

// Profile fetches from the source of id's issuer, or returns
// resolver.ErrNoProfileSource.
func (s *Set) Profile(ctx context.Context, id *resolver.Identity, token string) (resolver.Profile, resolver.Reason, error) {
	src := s.source(id.Issuer)
	if src == nil {
		return resolver.Profile{}, resolver.ReasonNone, resolver.ErrNoProfileSource
	}
	return src.Fetch(ctx, id, token)
}

// Always reports whether issuer's source is configured "profile": "always".
func (s *Set) Always(issuer string) bool {
	src := s.source(issuer)
	return src != nil && src.always
}
