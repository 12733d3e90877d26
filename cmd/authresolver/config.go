package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/authresolver/authresolver/internal/remote"
	"github.com/authresolver/authresolver/jwks"
	"github.com/authresolver/authresolver/login"
	"github.com/authresolver/authresolver/resolver"
)

const envPrefix = "AUTHRESOLVER_"

// Config is the whole configuration, read from AUTHRESOLVER_* variables.
type Config struct {
	ListenAddr string `env:"LISTEN_ADDR" envDefault:":8080"`
	AdminAddr  string `env:"ADMIN_ADDR" envDefault:"127.0.0.1:9090"`
	AdminToken string `env:"ADMIN_TOKEN"`
	// AdminTokenFile names a file holding the admin token (a mounted
	// Secret); exactly one of it and AdminToken may be set. The other
	// secrets have *File fields too (<NAME>_FILE).
	AdminTokenFile string `env:"ADMIN_TOKEN_FILE"`
	// GRPCAddr is the Envoy gRPC ext_authz listener; empty: off.
	GRPCAddr string `env:"GRPC_ADDR"`

	RedisURL        string   `env:"REDIS_URL"`
	RedisAddrs      []string `env:"REDIS_ADDRS"`
	RedisMasterName string   `env:"REDIS_MASTER_NAME"`

	JWTIssuer     string        `env:"JWT_ISSUER"`
	JWTJWKSURL    string        `env:"JWT_JWKS_URL"`
	JWTAudience   []string      `env:"JWT_AUDIENCE"`
	JWTAlgorithms []string      `env:"JWT_ALGORITHMS" envDefault:"RS256,ES256,EdDSA"`
	JWTLeeway     time.Duration `env:"JWT_LEEWAY" envDefault:"30s"`
	JWTType       string        `env:"JWT_TYPE"`
	Issuers       string        `env:"ISSUERS"`

	IntrospectionURL              string   `env:"INTROSPECTION_URL"`
	Introspection                 bool     `env:"INTROSPECTION"`
	IntrospectionClientID         string   `env:"INTROSPECTION_CLIENT_ID"`
	IntrospectionClientSecret     string   `env:"INTROSPECTION_CLIENT_SECRET"`
	IntrospectionClientSecretFile string   `env:"INTROSPECTION_CLIENT_SECRET_FILE"`
	IntrospectionAudience         []string `env:"INTROSPECTION_AUDIENCE"`

	StackProjectID           string `env:"STACK_PROJECT_ID"`
	StackSecretServerKey     string `env:"STACK_SECRET_SERVER_KEY"`
	StackSecretServerKeyFile string `env:"STACK_SECRET_SERVER_KEY_FILE"`
	StackAPIURL              string `env:"STACK_API_URL" envDefault:"https://api.stack-auth.com"`
	StackAllowAnonymous      bool   `env:"STACK_ALLOW_ANONYMOUS" envDefault:"true"`

	RemoteTimeout time.Duration `env:"REMOTE_TIMEOUT" envDefault:"2s"`

	JWKSMinRefresh      time.Duration `env:"JWKS_MIN_REFRESH" envDefault:"1m"`
	JWKSMaxRefresh      time.Duration `env:"JWKS_MAX_REFRESH" envDefault:"1h"`
	JWKSRefetchCooldown time.Duration `env:"JWKS_REFETCH_COOLDOWN" envDefault:"10s"`
	JWKSMaxStaleness    time.Duration `env:"JWKS_MAX_STALENESS" envDefault:"24h"`

	TokenHeaders       []string      `env:"TOKEN_HEADERS"`
	SessionCookie      string        `env:"SESSION_COOKIE" envDefault:"session"`
	SessionIdleTimeout time.Duration `env:"SESSION_IDLE_TIMEOUT" envDefault:"720h"`
	SessionLifetime    time.Duration `env:"SESSION_LIFETIME" envDefault:"8760h"`

	RevocationTTL time.Duration `env:"REVOCATION_TTL" envDefault:"24h"`

	RevocationCheckFailure string `env:"REVOCATION_CHECK_FAILURE" envDefault:"closed"`

	CacheTTL        time.Duration `env:"CACHE_TTL" envDefault:"5s"`
	CacheMaxEntries int           `env:"CACHE_MAX_ENTRIES" envDefault:"200000"`
	CacheShared     bool          `env:"CACHE_SHARED" envDefault:"false"`
	FlightTimeout   time.Duration `env:"FLIGHT_TIMEOUT" envDefault:"3s"`
	HeaderPrefix    string        `env:"HEADER_PREFIX" envDefault:"X-Auth-"`
	ClaimHeaders    string        `env:"CLAIM_HEADERS"`

	AssertionKeyFile  string `env:"ASSERTION_KEY_FILE"`
	AssertionIssuer   string `env:"ASSERTION_ISSUER"`
	AssertionAudience string `env:"ASSERTION_AUDIENCE"`

	LoginURL           string   `env:"LOGIN_URL"`
	LoginRedirectParam string   `env:"LOGIN_REDIRECT_PARAM" envDefault:"redirect_uri"`
	LoginAllowedHosts  []string `env:"LOGIN_ALLOWED_HOSTS"`

	// DemoAddr is where `authresolver dev` serves its browser demo.
	DemoAddr string `env:"DEMO_ADDR" envDefault:"127.0.0.1:8000"`

	ShutdownDelay   time.Duration `env:"SHUTDOWN_DELAY" envDefault:"0s"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"15s"`
	LogLevel        string        `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat       string        `env:"LOG_FORMAT" envDefault:"auto"`

	// Derived by validate.
	issuers []issuerConfig
	claims  []resolver.ClaimHeader
	login   *login.Redirector // nil: no login redirects
}

// issuerConfig is one trusted issuer, from the single-issuer variables or
// one entry of AUTHRESOLVER_ISSUERS.
type issuerConfig struct {
	Issuer     string   `json:"issuer"`
	JWKSURL    string   `json:"jwks_url"`
	Audiences  []string `json:"audiences"`
	Algorithms []string `json:"algorithms"`
	Leeway     string   `json:"leeway"`
	Type       string   `json:"typ"`
	leeway     time.Duration
	variable   string // where it was configured: JWT_ISSUER, ISSUERS or STACK_PROJECT_ID

	// Profile sources (SPEC §5): an OIDC UserInfo endpoint (or the
	// discovered one), or Stack Auth's users/me.
	UserinfoURL          string `json:"userinfo_url"`
	Profile              string `json:"profile"` // "" (per route) or "always"
	StackProjectID       string `json:"stack_project_id"`
	StackSecretServerKey string `json:"stack_secret_server_key"`
	StackAPIURL          string `json:"stack_api_url"`
	// anonymous: every token of this issuer is an anonymous user's (Stack's
	// anonymous-users issuer); stack: is_restricted means not verified.
	anonymous, stack bool
}

// configError names the variable at fault; main prints it as one line and
// exits with code 2.
type configError struct {
	Var string
	Msg string
}

func (e *configError) Error() string { return envPrefix + e.Var + ": " + e.Msg }

func bad(v, format string, args ...any) error {
	return &configError{Var: v, Msg: fmt.Sprintf(format, args...)}
}

// loadConfig parses environ (KEY=VALUE pairs, as os.Environ) and validates it.
func loadConfig(environ map[string]string) (Config, error) {
	cfg, err := env.ParseAsWithOptions[Config](env.Options{Prefix: envPrefix, Environment: environ})
	if err != nil {
		return Config{}, envError(err)
	}
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// envError turns the first of caarlos0/env's errors into a configError that
// names the variable rather than the Go field.
func envError(err error) error {
	var agg env.AggregateError
	if errors.As(err, &agg) && len(agg.Errors) > 0 {
		err = agg.Errors[0]
	}
	var pe env.ParseError
	if errors.As(err, &pe) {
		msg := pe.Err.Error()
		if pe.Type == reflect.TypeOf(time.Duration(0)) {
			msg = "not a duration with a unit (e.g. 30s, 5m, 720h)"
		}
		return bad(fieldVar(pe.Name), "%s", msg)
	}
	return fmt.Errorf("configuration: %w", err)
}

// fieldVar returns the variable name (without prefix) of a Config field.
func fieldVar(field string) string {
	f, ok := reflect.TypeOf(Config{}).FieldByName(field)
	if !ok {
		return field
	}
	name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
	return name
}

var supportedAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

func (c *Config) validate() error {
	if err := c.trimLists(); err != nil {
		return err
	}
	for _, v := range []struct {
		name string
		addr string
	}{{"LISTEN_ADDR", c.ListenAddr}, {"ADMIN_ADDR", c.AdminAddr}, {"GRPC_ADDR", c.GRPCAddr}} {
		if v.addr == "" && v.name == "GRPC_ADDR" {
			continue
		}
		if _, _, err := net.SplitHostPort(v.addr); err != nil {
			return bad(v.name, "want host:port, got %q", v.addr)
		}
	}
	if err := c.readAdminToken(); err != nil {
		return err
	}
	if err := c.readSecrets(); err != nil {
		return err
	}
	if err := c.validateRedis(); err != nil {
		return err
	}
	if err := c.validateIssuers(); err != nil {
		return err
	}
	if err := c.validateRemote(); err != nil {
		return err
	}
	if err := c.validateDurations(); err != nil {
		return err
	}
	if !validHeaderName(c.HeaderPrefix) {
		return bad("HEADER_PREFIX", "%q is not a valid header name prefix", c.HeaderPrefix)
	}
	for i, h := range c.TokenHeaders {
		if !validHeaderName(h) {
			return bad("TOKEN_HEADERS", "%q is not a valid header name", h)
		}
		if strings.EqualFold(h, "Cookie") || strings.EqualFold(h, "Authorization") {
			return bad("TOKEN_HEADERS", "%q is read already; list only extra headers", h)
		}
		if slices.IndexFunc(c.TokenHeaders[:i], func(prev string) bool { return strings.EqualFold(prev, h) }) >= 0 {
			return bad("TOKEN_HEADERS", "%q is listed twice", h)
		}
	}
	if !validHeaderName(c.SessionCookie) { // cookie names are tokens too
		return bad("SESSION_COOKIE", "%q is not a valid cookie name", c.SessionCookie)
	}
	claims, err := parseClaimHeaders(c.ClaimHeaders)
	if err != nil {
		return bad("CLAIM_HEADERS", "%v", err)
	}
	c.claims = claims
	if err := c.validateAssertion(); err != nil {
		return err
	}
	if err := c.validateLogin(); err != nil {
		return err
	}
	switch c.RevocationCheckFailure {
	case "closed", "open":
	default:
		return bad("REVOCATION_CHECK_FAILURE", "want closed or open, got %q", c.RevocationCheckFailure)
	}
	if c.CacheMaxEntries < 1000 || c.CacheMaxEntries > 100_000_000 {
		return bad("CACHE_MAX_ENTRIES", "%d is out of range [1000, 100000000]", c.CacheMaxEntries)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return bad("LOG_LEVEL", "want debug, info, warn or error, got %q", c.LogLevel)
	}
	switch c.LogFormat {
	case "auto", "json", "text":
	default:
		return bad("LOG_FORMAT", "want auto, json or text, got %q", c.LogFormat)
	}
	return nil
}

// validateAssertion requires the three assertion variables together: a key
// without an issuer and audience would sign assertions no app can check.
func (c *Config) validateAssertion() error {
	vars := []struct{ name, value string }{
		{"ASSERTION_KEY_FILE", c.AssertionKeyFile},
		{"ASSERTION_ISSUER", c.AssertionIssuer},
		{"ASSERTION_AUDIENCE", c.AssertionAudience},
	}
	set := 0
	for _, v := range vars {
		if v.value != "" {
			set++
		}
	}
	if set == 0 {
		return nil
	}
	for _, v := range vars {
		if strings.TrimSpace(v.value) == "" {
			return bad(v.name, "is empty; the identity assertion needs AUTHRESOLVER_ASSERTION_KEY_FILE, _ISSUER and _AUDIENCE together")
		}
	}
	return nil
}

// trimLists trims the spaces around the entries of the comma-list
// variables ("a, b" is a and b, as a reader means it) and refuses an empty
// entry ("a,,b", "a,"), which is a typo more likely than an intent.
func (c *Config) trimLists() error {
	for _, l := range []struct {
		name string
		list []string
	}{
		{"REDIS_ADDRS", c.RedisAddrs},
		{"JWT_AUDIENCE", c.JWTAudience},
		{"JWT_ALGORITHMS", c.JWTAlgorithms},
		{"TOKEN_HEADERS", c.TokenHeaders},
		{"INTROSPECTION_AUDIENCE", c.IntrospectionAudience},
	} {
		for i, e := range l.list {
			l.list[i] = strings.TrimSpace(e)
			if l.list[i] == "" {
				return bad(l.name, "empty entry in the comma list %q", strings.Join(l.list, ","))
			}
		}
	}
	return nil
}

// validateLogin builds the login redirector when AUTHRESOLVER_LOGIN_URL is
// set. The other login variables without it are a mistake, not a no-op.
func (c *Config) validateLogin() error {
	if c.LoginURL == "" {
		if len(c.LoginAllowedHosts) > 0 {
			return bad("LOGIN_ALLOWED_HOSTS", "is set but AUTHRESOLVER_LOGIN_URL is empty")
		}
		if c.LoginRedirectParam != login.DefaultParam {
			return bad("LOGIN_REDIRECT_PARAM", "is set but AUTHRESOLVER_LOGIN_URL is empty")
		}
		return nil
	}
	rd, err := login.New(login.Options{URL: c.LoginURL, Param: c.LoginRedirectParam, AllowedHosts: c.LoginAllowedHosts})
	if err == nil {
		c.login = rd
		return nil
	}
	for _, v := range []struct {
		name     string
		sentinel error
	}{{"LOGIN_REDIRECT_PARAM", login.ErrParam}, {"LOGIN_ALLOWED_HOSTS", login.ErrAllowedHosts}} {
		if errors.Is(err, v.sentinel) {
			return bad(v.name, "%s", strings.TrimPrefix(err.Error(), v.sentinel.Error()+": "))
		}
	}
	return bad("LOGIN_URL", "%s", strings.TrimPrefix(err.Error(), login.ErrLoginURL.Error()+": "))
}

// readAdminToken takes the admin token from AUTHRESOLVER_ADMIN_TOKEN_FILE
// when that is set. The file's trailing newline is not part of the token.
func (c *Config) readAdminToken() error {
	if c.AdminTokenFile == "" {
		return nil
	}
	if c.AdminToken != "" {
		return bad("ADMIN_TOKEN_FILE", "set together with AUTHRESOLVER_ADMIN_TOKEN; set only one")
	}
	b, err := os.ReadFile(c.AdminTokenFile)
	if err != nil {
		return bad("ADMIN_TOKEN_FILE", "%v", err)
	}
	tok := strings.TrimRight(string(b), "\r\n")
	if tok == "" || strings.ContainsAny(tok, "\r\n") {
		return bad("ADMIN_TOKEN_FILE", "%s: want one line holding the token", c.AdminTokenFile)
	}
	c.AdminToken = tok
	return nil
}

func (c *Config) validateRedis() error {
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			return bad("REDIS_URL", "want redis://host:port/db or rediss://…")
		}
	}
	for _, a := range c.RedisAddrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return bad("REDIS_ADDRS", "want a comma list of host:port, got %q", a)
		}
	}
	if c.RedisMasterName != "" && len(c.RedisAddrs) == 0 {
		return bad("REDIS_MASTER_NAME", "needs the Sentinel addresses in AUTHRESOLVER_REDIS_ADDRS")
	}
	return nil
}

func (c *Config) validateDurations() error {
	checks := []struct {
		name     string
		d        time.Duration
		min, max time.Duration
	}{
		{"JWT_LEEWAY", c.JWTLeeway, 0, 5 * time.Minute},
		{"JWKS_MIN_REFRESH", c.JWKSMinRefresh, time.Second, 24 * time.Hour},
		{"JWKS_MAX_REFRESH", c.JWKSMaxRefresh, c.JWKSMinRefresh, 7 * 24 * time.Hour},
		{"JWKS_REFETCH_COOLDOWN", c.JWKSRefetchCooldown, time.Second, time.Hour},
		{"JWKS_MAX_STALENESS", c.JWKSMaxStaleness, time.Minute, 30 * 24 * time.Hour},
		{"SESSION_IDLE_TIMEOUT", c.SessionIdleTimeout, time.Minute, 10 * 365 * 24 * time.Hour},
		{"SESSION_LIFETIME", c.SessionLifetime, time.Minute, 10 * 365 * 24 * time.Hour},
		{"REVOCATION_TTL", c.RevocationTTL, time.Minute, 365 * 24 * time.Hour},
		{"CACHE_TTL", c.CacheTTL, 0, time.Hour},
		{"FLIGHT_TIMEOUT", c.FlightTimeout, 100 * time.Millisecond, time.Minute},
		{"SHUTDOWN_DELAY", c.ShutdownDelay, 0, 5 * time.Minute},
		{"SHUTDOWN_TIMEOUT", c.ShutdownTimeout, time.Second, 10 * time.Minute},
	}
	for _, ch := range checks {
		if ch.d < ch.min || ch.d > ch.max {
			return bad(ch.name, "%s is out of range [%s, %s]", ch.d, ch.min, ch.max)
		}
	}
	return nil
}

func (c *Config) validateIssuers() error {
	if c.JWTIssuer != "" || c.JWTJWKSURL != "" {
		if c.JWTIssuer == "" {
			return bad("JWT_ISSUER", "is empty but AUTHRESOLVER_JWT_JWKS_URL is set")
		}
		if c.JWTJWKSURL != "" { // else discovered
			if err := checkJWKSURL(c.JWTJWKSURL); err != nil {
				return bad("JWT_JWKS_URL", "%v", err)
			}
		}
		c.issuers = append(c.issuers, issuerConfig{
			Issuer: c.JWTIssuer, JWKSURL: c.JWTJWKSURL, Audiences: c.JWTAudience,
			Algorithms: c.JWTAlgorithms, Type: c.JWTType, leeway: c.JWTLeeway, variable: "JWT_ISSUER",
		})
	} else if len(c.JWTAudience) > 0 {
		return bad("JWT_AUDIENCE", "is set but AUTHRESOLVER_JWT_ISSUER is empty")
	}
	if err := checkAlgorithms(c.JWTAlgorithms); err != nil {
		return bad("JWT_ALGORITHMS", "%v", err)
	}
	if c.Issuers != "" {
		var list []issuerConfig
		dec := json.NewDecoder(strings.NewReader(c.Issuers))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&list); err != nil {
			return bad("ISSUERS", "not a JSON array of issuers: %v", err)
		}
		for i := range list {
			if err := c.defaultIssuer(&list[i]); err != nil {
				return bad("ISSUERS", "entry %d: %v", i, err)
			}
		}
		c.issuers = append(c.issuers, list...)
	}
	seen := map[string]bool{}
	for _, is := range c.issuers {
		if seen[is.Issuer] {
			return bad("ISSUERS", "issuer %q is configured twice", is.Issuer)
		}
		seen[is.Issuer] = true
		if is.JWKSURL == "" {
			// Discovered from the issuer's openid-configuration.
			if err := remote.CheckURL(is.Issuer); err != nil {
				return bad(is.variable, "no jwks_url, and the issuer cannot be discovered: %v", err)
			}
		}
	}
	return nil
}

// defaultIssuer fills an AUTHRESOLVER_ISSUERS entry from the single-issuer
// defaults and checks it.
func (c *Config) defaultIssuer(is *issuerConfig) error {
	if is.Issuer == "" {
		return errors.New("issuer is required")
	}
	if is.JWKSURL != "" { // else discovered
		if err := checkJWKSURL(is.JWKSURL); err != nil {
			return err
		}
	}
	if slices.Contains(is.Audiences, "") {
		return errors.New("empty audience")
	}
	if len(is.Algorithms) == 0 {
		is.Algorithms = c.JWTAlgorithms
	}
	if err := checkAlgorithms(is.Algorithms); err != nil {
		return err
	}
	is.leeway = c.JWTLeeway
	is.variable = "ISSUERS"
	if is.Leeway != "" {
		d, err := time.ParseDuration(is.Leeway)
		if err != nil || d < 0 || d > 5*time.Minute {
			return fmt.Errorf("leeway %q: want a duration from 0s to 5m", is.Leeway)
		}
		is.leeway = d
	}
	return nil
}

func checkAlgorithms(algs []string) error {
	if len(algs) == 0 {
		return errors.New("empty algorithm list")
	}
	for _, a := range algs {
		if !slices.Contains(supportedAlgorithms, a) {
			return fmt.Errorf("%q is not supported (none and HMAC never are); want some of %s", a, strings.Join(supportedAlgorithms, ","))
		}
	}
	return nil
}

// checkJWKSURL checks a JWKS URL with the rules the verifier applies
// (https, http to a loopback host, file:///absolute/path), so that the
// configuration is refused at start-up naming the variable that holds it.
func checkJWKSURL(raw string) error {
	if err := jwks.CheckURL(raw); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "jwks: "))
	}
	return nil
}

// identityHeaders are the names, after the prefix, of the headers the
// resolver sets itself (SPEC §3, including the signed assertion). A claim
// header may not take one of them: it would overwrite or shadow a header
// an app trusts.
var identityHeaders = []string{
	"Session-Valid", "User-Id", "User-Anonymous", "User-Verified", "User-Roles",
	"Session-Amr", "Session-Authenticated-At", "Expires-At", "Credential", "Issuer",
	"Session-Id", "Error", "Assertion",
}

// parseClaimHeaders reads "claim=Header,claim2=Header2". The claim may be a
// URL; the header is after the last '='. Header names are letters, digits
// and '-' only: CGI, PHP, WSGI and Rack read "_" and "." as "-", so
// User_Id would reach an app as User-Id. A header that is an identity
// header, or listed twice, is refused (case-insensitively, as HTTP
// compares names).
func parseClaimHeaders(s string) ([]resolver.ClaimHeader, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []resolver.ClaimHeader
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		i := strings.LastIndexByte(part, '=')
		if i <= 0 || i == len(part)-1 {
			return nil, fmt.Errorf("%q: want claim=Header", part)
		}
		claim, header := strings.TrimSpace(part[:i]), strings.TrimSpace(part[i+1:])
		if claim == "" || !plainHeaderName(header) {
			return nil, fmt.Errorf("%q: want claim=Header, the header of letters, digits and '-'", part)
		}
		same := func(name string) bool { return strings.EqualFold(name, header) }
		if slices.ContainsFunc(identityHeaders, same) {
			return nil, fmt.Errorf("%q is the name of an identity header; pick another", header)
		}
		if slices.ContainsFunc(out, func(ch resolver.ClaimHeader) bool { return same(ch.Header) }) {
			return nil, fmt.Errorf("header %q is mapped twice", header)
		}
		out = append(out, resolver.ClaimHeader{Claim: claim, Header: header})
	}
	return out, nil
}

// plainHeaderName reports whether s is a non-empty header name of ASCII
// letters, digits and '-', not starting or ending with '-'.
func plainHeaderName(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
		default:
			return false
		}
	}
	return true
}

// validHeaderName reports whether s is a non-empty RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}
