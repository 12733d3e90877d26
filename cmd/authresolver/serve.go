package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	"github.com/authresolver/authresolver/admin"
	"github.com/authresolver/authresolver/assertion"
	"github.com/authresolver/authresolver/cache"
	"github.com/authresolver/authresolver/extauthz"
	"github.com/authresolver/authresolver/jwks"
	"github.com/authresolver/authresolver/login"
	"github.com/authresolver/authresolver/resolver"
	"github.com/authresolver/authresolver/session"
)

// app is a running server: what serve wired together, handed to the start
// hook (authresolver dev prints credentials from it).
type app struct {
	cfg       Config
	log       *slog.Logger
	reg       *prometheus.Registry
	verifiers []*jwks.Verifier
	tokens    *jwks.Set
	policy    *stackPolicy // nil without Stack Auth issuers
	store     store
	redis     redis.UniversalClient // nil with the in-memory store
	stopBus   func()                // nil without the invalidation bus
	draining  atomic.Bool
	remote    remoteParts

	resolveAddr, adminAddr net.Addr
	grpcAddr               net.Addr // nil unless AUTHRESOLVER_GRPC_ADDR is set
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated by loadConfig
	opts := &slog.HandlerOptions{Level: level}
	text := cfg.LogFormat == "text"
	if cfg.LogFormat == "auto" {
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				text = true
			}
		}
	}
	if text {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// serve runs the server until ctx (the signal) is done, then shuts down
// as shutdown says. onStart, when not nil, runs once every listener accepts
// connections.
//
// Only start-up waits on ctx. Background work (JWKS refresh, the
// invalidation bus) does not end with it: it keeps the caches right while
// the listeners drain, and shutdown stops it after them.
func serve(ctx context.Context, cfg Config, log *slog.Logger, onStart func(*app) error) error {
	a := &app{cfg: cfg, log: log, reg: prometheus.NewRegistry()}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := a.startVerifiers(ctx); err != nil {
		return err
	}
	if err := a.startRemote(ctx); err != nil {
		a.stopBackground()
		return err
	}
	if err := a.openStore(ctx); err != nil {
		a.stopBackground()
		return err
	}
	signer, err := a.loadAssertion()
	if err != nil {
		a.stopBackground()
		return err
	}
	l1, shared, invalidate := a.startCache(ctx)
	listeners, err := a.listen(l1, shared, signer, invalidate)
	if err != nil {
		a.stopBackground()
		return err
	}
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		log.Info("listening", "listener", l.name, "addr", l.addr.String())
		go func() { errc <- l.serve() }()
	}
	if onStart != nil {
		if err := onStart(a); err != nil {
			return errors.Join(err, a.shutdown(listeners, 0))
		}
	}
	select {
	case err := <-errc:
		return errors.Join(fmt.Errorf("serve: %w", err), a.shutdown(listeners, 0))
	case <-ctx.Done():
	}
	if err := a.shutdown(listeners, cfg.ShutdownDelay); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// loadAssertion returns the identity assertion signer, or nil when the
// assertion is not configured.
func (a *app) loadAssertion() (*assertion.Signer, error) {
	if a.cfg.AssertionKeyFile == "" {
		return nil, nil
	}
	s, err := assertion.Load(a.cfg.AssertionKeyFile, assertion.Options{
		Issuer: a.cfg.AssertionIssuer, Audience: a.cfg.AssertionAudience,
	})
	if err != nil {
		return nil, bad("ASSERTION_KEY_FILE", "%v", err)
	}
	a.log.Info("identity assertion on", "kid", s.KeyID(), "jwks", assertion.JWKSPath)
	return s, nil
}

// shutdown stops the server in this order, so that it answers as well as
// ever, from warm caches, until the load balancers have moved away:
//
//  1. /readyz answers 503, so that load balancers stop sending traffic;
//  2. delay (SHUTDOWN_DELAY) passes while every request is still served;
//  3. every listener stops accepting and finishes its requests within
//     SHUTDOWN_TIMEOUT, on a fresh context (the signal's is done already);
//  4. background work stops: the invalidation bus, then JWKS refresh;
//  5. the session store closes, and with it Redis.
func (a *app) shutdown(listeners []listener, delay time.Duration) error {
	a.log.Info("shutting down", "delay", delay.String(), "timeout", a.cfg.ShutdownTimeout.String())
	a.draining.Store(true)
	time.Sleep(delay)
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	for _, l := range listeners {
		if err := l.shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown %s listener: %w", l.name, err))
		}
	}
	a.stopBackground()
	return errors.Join(errs...)
}

// stopBackground stops the invalidation bus and JWKS refresh and closes
// the session store (steps 4 and 5 of shutdown). It is also the clean-up
// of a start-up that fails half-way.
func (a *app) stopBackground() {
	if a.stopBus != nil {
		a.stopBus()
	}
	a.remote.stopDiscovery() // before the verifiers close: it may start one
	for _, v := range a.verifiers {
		v.Close()
	}
	if a.store != nil {
		if err := a.store.Close(); err != nil {
			a.log.Warn("closing the session store", "error", err)
		}
	}
}

// listener is one served port. serve blocks until shutdown (or a failure);
// shutdown stops accepting and waits for the requests in flight until ctx
// is done, then drops them. HTTP listeners are made by httpListener;
// another protocol needs only these two functions.
type listener struct {
	name     string
	addr     net.Addr
	serve    func() error
	shutdown func(ctx context.Context) error
}

// listen opens the resolve and admin listeners, and the gRPC listener when
// AUTHRESOLVER_GRPC_ADDR is set; resolve and gRPC share one decision
// pipeline.
func (a *app) listen(l1 resolver.Cache, shared resolver.SharedCache, signer *assertion.Signer, invalidate func(context.Context, string) error) ([]listener, error) {
	resolveLn, err := listenTCP(a.cfg.ListenAddr, "LISTEN_ADDR")
	if err != nil {
		return nil, err
	}
	adminLn, err := listenTCP(a.cfg.AdminAddr, "ADMIN_ADDR")
	if err != nil {
		resolveLn.Close()
		return nil, err
	}
	a.resolveAddr, a.adminAddr = resolveLn.Addr(), adminLn.Addr()
	decide := a.newResolver(l1, shared, signer)
	listeners := []listener{
		httpListener("resolve", resolveLn, a.resolveHandler(decide, signer), a.log),
		httpListener("admin", adminLn, a.adminHandler(invalidate), a.log),
	}
	if a.cfg.GRPCAddr == "" {
		return listeners, nil
	}
	grpcLn, err := listenTCP(a.cfg.GRPCAddr, "GRPC_ADDR")
	if err != nil {
		resolveLn.Close()
		adminLn.Close()
		return nil, err
	}
	a.grpcAddr = grpcLn.Addr()
	return append(listeners, a.grpcListener(grpcLn, decide)), nil
}

// grpcListener serves Envoy's gRPC ext_authz from the resolve listener's
// decisions, with a health service that is SERVING exactly when /readyz
// answers 200. Its shutdown ends health Watch streams first, so that the
// graceful stop waits only for Checks in flight.
func (a *app) grpcListener(ln net.Listener, h *resolver.Handler) listener {
	srv := grpc.NewServer(extauthz.ServerOptions()...)
	health := extauthz.NewHealth(func(ctx context.Context) bool { return a.notReady(ctx) == "" }, 0)
	extauthz.Register(srv, extauthz.New(h, a.log), health)
	return listener{
		name:  "grpc",
		addr:  ln.Addr(),
		serve: func() error { return srv.Serve(ln) },
		shutdown: func(ctx context.Context) error {
			health.Close()
			done := make(chan struct{})
			go func() {
				srv.GracefulStop()
				close(done)
			}()
			select {
			case <-done:
				return nil
			case <-ctx.Done():
				srv.Stop()
				<-done
				return ctx.Err()
			}
		},
	}
}

func httpListener(name string, ln net.Listener, h http.Handler, log *slog.Logger) listener {
	srv := newServer(h, log)
	return listener{
		name: name,
		addr: ln.Addr(),
		serve: func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
		shutdown: func(ctx context.Context) error {
			err := srv.Shutdown(ctx)
			if err != nil {
				srv.Close()
			}
			return err
		},
	}
}

// newResolver builds the decision pipeline that the resolve listener and
// the gRPC listener share.
func (a *app) newResolver(l1 resolver.Cache, shared resolver.SharedCache, signer *assertion.Signer) *resolver.Handler {
	var asserter resolver.Asserter
	if signer != nil {
		asserter = signer // a nil *Signer in the interface would not be nil
	}
	return resolver.New(resolver.Options{
		Tokens:             a.tokenVerifier(),
		Introspector:       a.introspector(),
		Profiles:           a.profileSource(),
		Sessions:           a.store,
		Revocations:        a.store,
		Login:              a.loginRedirector(),
		RevocationFailOpen: a.cfg.RevocationCheckFailure == "open",
		Asserter:           asserter,
		Cache:              l1,
		Shared:             shared,
		HeaderPrefix:       a.cfg.HeaderPrefix,
		ClaimHeaders:       a.cfg.claims,
		TokenHeaders:       a.cfg.TokenHeaders,
		SessionCookie:      a.cfg.SessionCookie,
		CacheTTL:           a.cfg.CacheTTL,
		FlightTimeout:      a.cfg.FlightTimeout,
		ValidSessionID:     func(s string) bool { _, err := session.ParseID(s); return err == nil },
		Logger:             a.log,
		Metrics:            resolver.NewMetrics(a.reg),
	})
}

// resolveHandler serves the resolve listener. It routes by hand: a
// router's per-request context allocations are measurable on this path.
func (a *app) resolveHandler(h *resolver.Handler, signer *assertion.Signer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			a.healthz(w, r)
		case "/readyz":
			a.readyz(w, r)
		case assertion.JWKSPath:
			if signer == nil {
				http.NotFound(w, r)
				return
			}
			signer.ServeHTTP(w, r)
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// adminHandler serves the admin listener: the admin API, /metrics and health.
func (a *app) adminHandler(invalidate func(context.Context, string) error) http.Handler {
	r := chi.NewRouter()
	r.Handle("/metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}))
	r.Get("/healthz", a.healthz)
	r.Get("/readyz", a.readyz)
	admin.New(admin.Options{
		Sessions:      a.store,
		Revoker:       a.store,
		Tokens:        a.store,
		Token:         a.cfg.AdminToken,
		Cookie:        a.cfg.SessionCookie,
		Lifetime:      a.cfg.SessionLifetime,
		RevocationTTL: a.cfg.RevocationTTL,
		Leeway:        maxLeeway(a.cfg.issuers),
		Invalidate:    invalidate,
		Logger:        a.log,
	}).Mount(r)
	if a.cfg.AdminToken == "" {
		a.log.Warn("admin API is off: set AUTHRESOLVER_ADMIN_TOKEN to enable it")
	}
	return r
}

// maxLeeway is the longest any verifier accepts a token after its exp, and
// so how much longer a revocation must be kept.
func maxLeeway(issuers []issuerConfig) time.Duration {
	var d time.Duration
	for _, is := range issuers {
		d = max(d, is.leeway)
	}
	return d
}

func listenTCP(addr, variable string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, bad(variable, "cannot listen: %v", err)
	}
	return ln, nil
}

func newServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// store is what serve needs of a session store; session.RedisStore and
// session.MemoryStore both are one.
type store interface {
	admin.Sessions
	admin.SessionRevoker
	admin.TokenRevoker
	resolver.SessionStore
	resolver.RevocationChecker
	Ping(ctx context.Context) error
	Close() error
}

// openStore connects to Redis when configured, else keeps sessions and
// revocations in this process's memory. It pings Redis once and logs the
// result; a Redis that does not answer does not stop start-up: /readyz
// reports it until it answers.
func (a *app) openStore(ctx context.Context) error {
	opts := session.Options{
		IdleTimeout: a.cfg.SessionIdleTimeout,
		Lifetime:    a.cfg.SessionLifetime,
		Logger:      a.log,
	}
	if a.cfg.RedisURL == "" && len(a.cfg.RedisAddrs) == 0 {
		a.log.Warn("in-memory session store: sessions and revocations live in this process only; set AUTHRESOLVER_REDIS_URL for more than one replica")
		a.store = session.NewMemoryStore(opts)
		return nil
	}
	client, err := session.NewRedisClient(session.RedisConfig{
		URL: a.cfg.RedisURL, Addrs: a.cfg.RedisAddrs, MasterName: a.cfg.RedisMasterName,
	})
	if err != nil {
		return bad("REDIS_URL", "%v", err)
	}
	// go-redis logs reconnects through a package-level logger in plain
	// text; keep stderr JSON lines by sending them through slog.
	redis.SetLogger(redisLogger{a.log})
	a.redis = client
	a.store = session.NewRedisStore(client, opts)
	a.pingStore(ctx)
	return nil
}

// startupPingTimeout bounds the start-up ping of Redis.
const startupPingTimeout = 2 * time.Second

func (a *app) pingStore(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, startupPingTimeout)
	defer cancel()
	if err := a.store.Ping(ctx); err != nil {
		a.log.WarnContext(ctx, "redis does not answer: /readyz answers 503 until it does", "error", err)
		return
	}
	a.log.InfoContext(ctx, "redis answers")
}

// redisLogger adapts slog to go-redis's internal logger.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// startCache builds the decision cache: L1 unless CACHE_TTL is 0, L2 and the
// invalidation bus when Redis is configured. It returns nil interfaces for
// tiers that are off, and the function revocations call. The bus runs
// until a.stopBus, not until ctx is done.
func (a *app) startCache(ctx context.Context) (resolver.Cache, resolver.SharedCache, func(context.Context, string) error) {
	if a.cfg.CacheTTL == 0 {
		return nil, nil, nil
	}
	l1 := cache.NewL1(cache.L1Options{MaxEntries: a.cfg.CacheMaxEntries, Disabled: a.redis != nil}) // the bus turns it on
	metrics := cache.NewMetrics(a.reg, l1)
	if a.redis == nil {
		return l1, nil, func(_ context.Context, tag string) error {
			l1.Invalidate(tag)
			return nil
		}
	}
	var shared *cache.Shared
	if a.cfg.CacheShared {
		shared = cache.NewShared(a.redis, cache.SharedOptions{Prefix: session.DefaultPrefix})
	}
	bus := cache.NewBus(a.redis, session.DefaultPrefix+"invalidate", l1, shared, a.log, metrics)
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		bus.Run(ctx)
	}()
	a.stopBus = func() {
		cancel()
		<-done
	}
	if shared == nil {
		return l1, nil, bus.Invalidate
	}
	return l1, shared, bus.Invalidate
}

// startVerifiers builds one verifier per configured issuer and starts its
// key fetching. An unreachable IdP does not stop start-up; /readyz tells.
func (a *app) startVerifiers(ctx context.Context) error {
	if len(a.cfg.issuers) == 0 {
		a.log.Warn("no JWT issuer configured: Bearer tokens are refused")
		return nil
	}
	metrics := jwks.NewMetrics(a.reg)
	policy := &stackPolicy{anonymous: map[string]bool{}, restricted: map[string]bool{}}
	for _, is := range a.cfg.issuers {
		extra := claimNames(a.cfg.claims)
		if is.stack {
			extra = append(extra, restrictedClaim)
			policy.restricted[is.Issuer] = true
			policy.anonymous[is.Issuer] = is.anonymous
		}
		if len(is.Audiences) == 0 {
			a.log.Warn("audience is not checked for this issuer: set AUTHRESOLVER_JWT_AUDIENCE or audiences", "issuer", is.Issuer)
		}
		v, err := jwks.New(jwks.Options{
			Issuer:          is.Issuer,
			URL:             is.JWKSURL,
			LateURL:         is.JWKSURL == "", // discovered: startRemote sets it
			Audiences:       is.Audiences,
			Algorithms:      is.Algorithms,
			Leeway:          is.leeway,
			Type:            is.Type,
			ExtraClaims:     extra,
			MinRefresh:      a.cfg.JWKSMinRefresh,
			MaxRefresh:      a.cfg.JWKSMaxRefresh,
			RefetchCooldown: a.cfg.JWKSRefetchCooldown,
			MaxStaleness:    a.cfg.JWKSMaxStaleness,
			Logger:          a.log,
			Metrics:         metrics,
		})
		if err != nil {
			return bad(is.variable, "issuer %q: %v", is.Issuer, err)
		}
		a.verifiers = append(a.verifiers, v)
	}
	// Start waits a while for each first fetch; an IdP that is down must
	// not delay start-up once per issuer.
	errs := make([]error, len(a.verifiers))
	var wg sync.WaitGroup
	for i, v := range a.verifiers {
		if a.cfg.issuers[i].JWKSURL == "" {
			continue
		}
		wg.Go(func() {
			if err := v.Start(ctx); err != nil {
				errs[i] = fmt.Errorf("issuer %q: %w", v.Issuer(), err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		a.stopBackground()
		return err
	}
	a.tokens = jwks.NewSet(a.verifiers...)
	if len(policy.restricted) > 0 {
		a.policy = policy
	}
	return nil
}

// tokenVerifier returns nil when no issuer is configured, so that the
// resolver knows JWT is off (a nil *jwks.Set in the interface is not nil).
func (a *app) tokenVerifier() resolver.TokenVerifier {
	switch {
	case a.tokens == nil:
		return nil
	case a.policy != nil:
		a.policy.next = a.tokens
		return a.policy
	}
	return a.tokens
}

var _ resolver.LoginRedirector = (*login.Redirector)(nil)

// loginRedirector returns nil when AUTHRESOLVER_LOGIN_URL is not set (a nil
// *login.Redirector in the interface is not nil).
func (a *app) loginRedirector() resolver.LoginRedirector {
	if a.cfg.login == nil {
		return nil
	}
	return a.cfg.login
}

func claimNames(chs []resolver.ClaimHeader) []string {
	var out []string
	for _, ch := range chs {
		out = append(out, ch.Claim)
	}
	return out
}

func (a *app) healthz(w http.ResponseWriter, _ *http.Request) {
	writeStatus(w, http.StatusOK, "ok", "")
}

func (a *app) readyz(w http.ResponseWriter, r *http.Request) {
	if reason := a.notReady(r.Context()); reason != "" {
		writeStatus(w, http.StatusServiceUnavailable, "unavailable", reason)
		return
	}
	writeStatus(w, http.StatusOK, "ok", "")
}

// notReady says why the server should not get traffic, or "".
func (a *app) notReady(ctx context.Context) string {
	switch {
	case a.draining.Load():
		return "shutting down"
	case a.tokens != nil && !a.tokens.Ready():
		return "no JWKS loaded"
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := a.store.Ping(ctx); err != nil {
		return "session store unreachable"
	}
	return ""
}

func writeStatus(w http.ResponseWriter, code int, status, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(struct {
		Status string `json:"status"`
		Reason string `json:"reason,omitempty"`
	}{status, reason})
}

// healthcheck GETs /healthz on the configured listen address, for container
// HEALTHCHECKs (the image has no shell or curl).
func healthcheck(ctx context.Context, environ map[string]string, stderr io.Writer) int {
	addr := environ[envPrefix+"LISTEN_ADDR"]
	if addr == "" {
		addr = ":8080"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %sLISTEN_ADDR: %v\n", envPrefix, err)
		return 2
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(stderr, "healthcheck: /healthz answered", resp.Status)
		return 1
	}
	return 0
}
