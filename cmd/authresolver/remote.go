package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authresolver/authresolver/discovery"
	"github.com/authresolver/authresolver/internal/remote"
	"github.com/authresolver/authresolver/introspect"
	"github.com/authresolver/authresolver/jwks"
	"github.com/authresolver/authresolver/profile"
	"github.com/authresolver/authresolver/resolver"
)

// stackTokenHeader is the header Stack Auth's SDKs send the access token in.
const stackTokenHeader = "X-Stack-Access-Token" //nolint:gosec // G101: a header name, not a credential

// readSecrets takes the introspection and Stack secrets from their
// <NAME>_FILE variables when set (the variable itself must then be empty),
// as readAdminToken does the admin token. A trailing newline, as
// editors and `echo` leave, is not part of the secret.
func (c *Config) readSecrets() error {
	for _, s := range []struct {
		name  string
		value *string
		file  string
	}{
		{"INTROSPECTION_CLIENT_SECRET", &c.IntrospectionClientSecret, c.IntrospectionClientSecretFile},
		{"STACK_SECRET_SERVER_KEY", &c.StackSecretServerKey, c.StackSecretServerKeyFile},
	} {
		if s.file == "" {
			continue
		}
		if *s.value != "" {
			return bad(s.name+"_FILE", "set, and so is AUTHRESOLVER_%s: give the secret one way", s.name)
		}
		b, err := os.ReadFile(s.file)
		if err != nil {
			// The path error names the file, never its content.
			return bad(s.name+"_FILE", "%v", err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return bad(s.name+"_FILE", "%s is empty", s.file)
		}
		*s.value = v
	}
	return nil
}

// validateRemote checks introspection, the Stack Auth preset and the
// issuers' profile sources, after validateIssuers.
func (c *Config) validateRemote() error {
	if c.RemoteTimeout <= 0 || c.RemoteTimeout > time.Minute {
		return bad("REMOTE_TIMEOUT", "%s is out of range (0s, 1m]", c.RemoteTimeout)
	}
	if err := c.addStack(); err != nil {
		return err
	}
	for i := range c.issuers {
		is := &c.issuers[i]
		v := is.variable
		switch is.Profile {
		case "", "always":
		default:
			return bad(v, "issuer %q: profile %q: want \"always\" or nothing (per route, profile=true)", is.Issuer, is.Profile)
		}
		if is.UserinfoURL != "" && is.StackProjectID != "" {
			return bad(v, "issuer %q: userinfo_url and stack_project_id: choose one profile source", is.Issuer)
		}
		if is.UserinfoURL != "" {
			if err := remote.CheckURL(is.UserinfoURL); err != nil {
				return bad(v, "issuer %q: userinfo_url: %v", is.Issuer, err)
			}
		}
		if is.StackProjectID != "" {
			if is.StackSecretServerKey == "" {
				return bad(v, "issuer %q: stack_project_id needs stack_secret_server_key", is.Issuer)
			}
			if is.StackAPIURL == "" {
				is.StackAPIURL = profile.DefaultStackAPIURL
			}
			if err := remote.CheckURL(is.StackAPIURL); err != nil {
				return bad(v, "issuer %q: stack_api_url: %v", is.Issuer, err)
			}
		}
		if is.Profile == "always" && is.UserinfoURL == "" && is.StackProjectID == "" && is.JWKSURL != "" {
			return bad(v, "issuer %q: profile \"always\" needs userinfo_url, stack_project_id, or discovery (no jwks_url)", is.Issuer)
		}
	}
	return c.validateIntrospection()
}

func (c *Config) validateIntrospection() error {
	switch {
	case c.IntrospectionURL == "" && !c.Introspection:
		if c.IntrospectionClientID != "" || c.IntrospectionClientSecret != "" || len(c.IntrospectionAudience) > 0 {
			return bad("INTROSPECTION_URL", "is empty, but introspection credentials or audiences are set (set it, or AUTHRESOLVER_INTROSPECTION=true to discover it)")
		}
		return nil
	case c.IntrospectionURL != "" && c.Introspection:
		return bad("INTROSPECTION", "true, and AUTHRESOLVER_INTROSPECTION_URL is set: choose one")
	case c.IntrospectionURL != "":
		if err := remote.CheckURL(c.IntrospectionURL); err != nil {
			return bad("INTROSPECTION_URL", "%v", err)
		}
	case c.JWTIssuer == "":
		return bad("INTROSPECTION", "true needs AUTHRESOLVER_JWT_ISSUER, whose openid-configuration names the introspection_endpoint")
	}
	if c.IntrospectionClientID == "" {
		return bad("INTROSPECTION_CLIENT_ID", "is empty: introspection authenticates with client_secret_basic")
	}
	if c.IntrospectionClientSecret == "" {
		return bad("INTROSPECTION_CLIENT_SECRET", "is empty (or use AUTHRESOLVER_INTROSPECTION_CLIENT_SECRET_FILE)")
	}
	for _, a := range c.IntrospectionAudience {
		if a == "" {
			return bad("INTROSPECTION_AUDIENCE", "an empty audience")
		}
	}
	return nil
}

// addStack configures a Stack Auth / Neon Auth project in one step: its
// regular users' issuer (audience <id>) and, unless refused, its anonymous
// users' issuer (audience <id>:anon), both ES256, with their JWKS, and with
// the secret server key users/me as their profile source.
func (c *Config) addStack() error {
	if c.StackProjectID == "" {
		if c.StackSecretServerKey != "" {
			return bad("STACK_SECRET_SERVER_KEY", "is set but AUTHRESOLVER_STACK_PROJECT_ID is empty")
		}
		return nil
	}
	id := c.StackProjectID
	if strings.ContainsAny(id, "/?#%: ") {
		return bad("STACK_PROJECT_ID", "%q is not a project ID", id)
	}
	api := strings.TrimRight(c.StackAPIURL, "/")
	if err := remote.CheckURL(api); err != nil {
		return bad("STACK_API_URL", "%v", err)
	}
	jwksURL := api + "/api/v1/projects/" + id + "/.well-known/jwks.json"
	regular := issuerConfig{
		Issuer: api + "/api/v1/projects/" + id, JWKSURL: jwksURL,
		Audiences: []string{id}, Algorithms: []string{"ES256"}, leeway: c.JWTLeeway,
		StackProjectID: c.StackProjectID, StackSecretServerKey: c.StackSecretServerKey, StackAPIURL: api,
		variable: "STACK_PROJECT_ID", stack: true,
	}
	if c.StackSecretServerKey == "" {
		regular.StackProjectID = "" // no key: local JWT verification only
	}
	stack := []issuerConfig{regular}
	if c.StackAllowAnonymous {
		// Stack's JWKS publishes the anonymous users' keys only on request.
		anon := regular
		anon.Issuer = api + "/api/v1/projects-anonymous-users/" + id
		anon.JWKSURL = jwksURL + "?include_anonymous=true"
		anon.Audiences = []string{id + ":anon"}
		anon.anonymous = true
		stack = append(stack, anon)
	}
	for _, s := range stack {
		for _, is := range c.issuers {
			if is.Issuer == s.Issuer {
				return bad("STACK_PROJECT_ID", "issuer %q is configured in AUTHRESOLVER_ISSUERS too", s.Issuer)
			}
		}
	}
	c.issuers = append(c.issuers, stack...)
	found := false
	for _, h := range c.TokenHeaders {
		found = found || strings.EqualFold(h, stackTokenHeader)
	}
	if !found {
		c.TokenHeaders = append(c.TokenHeaders, stackTokenHeader)
	}
	return nil
}

// stackPolicy adjusts identities of Stack Auth issuers: every token of the
// anonymous-users issuer is anonymous, and a restricted user (onboarding
// not finished: is_restricted) is not verified.
type stackPolicy struct {
	next       resolver.TokenVerifier
	anonymous  map[string]bool // issuer → anonymous-users issuer
	restricted map[string]bool // issuers whose is_restricted claim is read
}

func (p *stackPolicy) Verify(ctx context.Context, token string) (resolver.Identity, resolver.Reason, error) {
	id, reason, err := p.next.Verify(ctx, token)
	if err != nil || reason != resolver.ReasonNone {
		return id, reason, err
	}
	if p.anonymous[id.Issuer] {
		id.Anonymous = true
	}
	if v, ok := id.Claims[restrictedClaim]; ok && p.restricted[id.Issuer] && v != "false" {
		id.Verified = false
	}
	return id, resolver.ReasonNone, nil
}

const restrictedClaim = "is_restricted"

// lateIntrospector answers 503 until the introspection endpoint has been
// discovered.
type lateIntrospector struct {
	client atomic.Pointer[introspect.Client]
}

var errNotDiscovered = errors.New("introspection endpoint not discovered yet")

func (l *lateIntrospector) Introspect(ctx context.Context, token string) (resolver.Identity, resolver.Reason, error) {
	c := l.client.Load()
	if c == nil {
		return resolver.Identity{}, resolver.ReasonNone, errNotDiscovered
	}
	return c.Introspect(ctx, token)
}

// remoteParts are the clients of the identity providers serve wires in.
type remoteParts struct {
	introspector resolver.Introspector // nil: opaque tokens are refused
	profiles     *profile.Set          // nil: no issuer has a profile source
	late         *lateIntrospector
	discoveries  sync.WaitGroup
	stop         context.CancelFunc // ends discovery
}

// stopDiscovery ends discovery and waits for it, so that no verifier is
// started after the verifiers are closed.
func (r *remoteParts) stopDiscovery() {
	if r.stop != nil {
		r.stop()
	}
	r.discoveries.Wait()
}

// newIntrospector builds the configured introspection client; with
// AUTHRESOLVER_INTROSPECTION=true it is set once discovery names the
// endpoint.
func (a *app) newIntrospector(metrics *remote.Metrics, url string) (*introspect.Client, error) {
	c, err := introspect.New(introspect.Options{
		URL: url, ClientID: a.cfg.IntrospectionClientID, ClientSecret: a.cfg.IntrospectionClientSecret,
		Audiences: a.cfg.IntrospectionAudience, Leeway: a.cfg.JWTLeeway, ExtraClaims: claimNames(a.cfg.claims),
		Timeout: a.cfg.RemoteTimeout, Metrics: metrics,
	})
	if err != nil {
		return nil, bad("INTROSPECTION_URL", "%v", err)
	}
	return c, nil
}

// newProfileSource returns is's profile source for url (UserInfo) or its
// Stack project, or nil when it has none.
func (a *app) newProfileSource(is issuerConfig, userinfo string, metrics *remote.Metrics) (*profile.Source, error) {
	if userinfo == "" && is.StackProjectID == "" {
		return nil, nil
	}
	src, err := profile.New(profile.Options{
		Issuer: is.Issuer, UserinfoURL: userinfo,
		StackProjectID: is.StackProjectID, StackSecretServerKey: is.StackSecretServerKey, StackAPIURL: is.StackAPIURL,
		Always: is.Profile == "always", ExtraClaims: claimNames(a.cfg.claims),
		Timeout: a.cfg.RemoteTimeout, Metrics: metrics,
	})
	if err != nil {
		return nil, bad(is.variable, "issuer %q: %v", is.Issuer, err)
	}
	return src, nil
}

// needsDiscovery reports whether is must be discovered: no JWKS URL, or
// the introspection endpoint is to come from it.
func (a *app) needsDiscovery(is issuerConfig) bool {
	return is.JWKSURL == "" || a.cfg.Introspection && is.Issuer == a.cfg.JWTIssuer && !is.stack
}

// startRemote builds the introspection client and the profile sources, and
// starts discovery in the background for the issuers that need it: each
// one's verifier gets its JWKS URL and starts, its UserInfo endpoint
// becomes its profile source (unless it names one), and the single
// issuer's introspection endpoint is used with
// AUTHRESOLVER_INTROSPECTION=true. Until then their tokens get 503.
func (a *app) startRemote(ctx context.Context) error {
	metrics := remote.NewMetrics(a.reg)
	r := &a.remote
	ctx, r.stop = context.WithCancel(ctx)
	if a.cfg.IntrospectionURL != "" {
		c, err := a.newIntrospector(metrics, a.cfg.IntrospectionURL)
		if err != nil {
			return err
		}
		r.introspector = c
	} else if a.cfg.Introspection {
		r.late = &lateIntrospector{}
		r.introspector = r.late
	}
	r.profiles = profile.NewSet()
	for i, is := range a.cfg.issuers {
		src, err := a.newProfileSource(is, is.UserinfoURL, metrics)
		if err != nil {
			return err
		}
		if src != nil {
			if err := r.profiles.Add(src); err != nil {
				return bad(is.variable, "%v", err)
			}
		}
		if !a.needsDiscovery(is) {
			continue
		}
		v := a.verifiers[i]
		r.discoveries.Go(func() {
			discovery.Run(ctx, discovery.Options{
				Issuer: is.Issuer, Metrics: metrics, Logger: a.log, // the JWKS fetch timeout (10s)
			}, func(ctx context.Context, doc discovery.Document) { a.discovered(ctx, is, v, doc, metrics) })
		})
	}
	return nil
}

// discovered wires what an issuer's configuration names.
func (a *app) discovered(ctx context.Context, is issuerConfig, v *jwks.Verifier, doc discovery.Document, metrics *remote.Metrics) {
	if is.JWKSURL == "" {
		if err := v.SetURL(doc.JWKSURI); err != nil {
			a.log.ErrorContext(ctx, "discovery: jwks_uri refused", "issuer", is.Issuer, "error", err.Error())
			return
		}
		if err := v.Start(ctx); err != nil {
			a.log.ErrorContext(ctx, "discovery: cannot start key refresh", "issuer", is.Issuer, "error", err.Error())
			return
		}
	}
	if is.UserinfoURL == "" && is.StackProjectID == "" && doc.UserinfoEndpoint != "" {
		src, err := a.newProfileSource(is, doc.UserinfoEndpoint, metrics)
		if err == nil {
			err = a.remote.profiles.Add(src)
		}
		if err != nil {
			a.log.ErrorContext(ctx, "discovery: userinfo_endpoint refused", "issuer", is.Issuer, "error", err.Error())
		}
	}
	if a.remote.late != nil && is.Issuer == a.cfg.JWTIssuer {
		if doc.IntrospectionEndpoint == "" {
			a.log.ErrorContext(ctx, "discovery: AUTHRESOLVER_INTROSPECTION=true but the provider names no introspection_endpoint; opaque tokens get 503", "issuer", is.Issuer)
			return
		}
		c, err := a.newIntrospector(metrics, doc.IntrospectionEndpoint)
		if err != nil {
			a.log.ErrorContext(ctx, "discovery: introspection_endpoint refused", "issuer", is.Issuer, "error", err.Error())
			return
		}
		a.remote.late.client.Store(c)
	}
}

// profileSource returns nil when no issuer can have a profile source, so
// that the resolver knows profiles are off.
func (a *app) profileSource() resolver.ProfileSource {
	for _, is := range a.cfg.issuers {
		if is.UserinfoURL != "" || is.StackProjectID != "" || a.needsDiscovery(is) {
			return a.remote.profiles
		}
	}
	return nil
}

func (a *app) introspector() resolver.Introspector { return a.remote.introspector }
