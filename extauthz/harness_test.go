package extauthz_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/authresolver/authresolver/cache"
	"github.com/authresolver/authresolver/extauthz"
	"github.com/authresolver/authresolver/jwks"
	"github.com/authresolver/authresolver/jwks/jwkstest"
	"github.com/authresolver/authresolver/resolver"
)

const (
	issuer   = "https://issuer.test"
	audience = "api"
	// Session IDs the fake store knows.
	sessionBob  = "c2Vzc2lvbi1ib2ItMDEyMzQ1Njc4OWFiY2RlZmdoaWprbG0"
	sessionDown = "c2Vzc2lvbi1kb3duLTAxMjM0NTY3ODlhYmNkZWZnaGlqa2w"
)

// Keys are generated once per test binary.
var keys = sync.OnceValue(func() struct{ good, other *jwkstest.Key } {
	return struct{ good, other *jwkstest.Key }{jwkstest.NewKey("ES256", "k1"), jwkstest.NewKey("ES256", "k1")}
})

// harness is a resolver.Handler with a real JWKS verifier (jwkstest
// issuer), a fake session store and revocation list and a real L1 cache,
// served by extauthz over a real gRPC connection on loopback.
type harness struct {
	auth     authv3.AuthorizationClient
	health   healthpb.HealthClient
	resolver *resolver.Handler
	l1       *cache.L1
	reg      *prometheus.Registry
	hsrv     *extauthz.Health
	gsrv     *grpc.Server
	verifies atomic.Int64 // calls of the token verifier
	ready    atomic.Bool
	revoked  sync.Map // jti → true
}

type countingTokens struct {
	next  resolver.TokenVerifier
	count *atomic.Int64
}

func (c countingTokens) Verify(ctx context.Context, tok string) (resolver.Identity, resolver.Reason, error) {
	c.count.Add(1)
	return c.next.Verify(ctx, tok)
}

type fakeSessions struct{}

func (fakeSessions) Lookup(_ context.Context, id string) (resolver.Identity, resolver.Reason, error) {
	switch id {
	case sessionBob:
		return resolver.Identity{
			Credential: resolver.CredentialSession, UserID: "bob", SessionHandle: "h-bob",
			ExpiresAt: time.Now().Add(time.Hour),
		}, resolver.ReasonNone, nil
	case sessionDown:
		return resolver.Identity{}, resolver.ReasonNone, errors.New("session: lookup: connection refused")
	}
	return resolver.Identity{}, resolver.ReasonSessionNotFound, nil
}

type fakeRevocations struct{ h *harness }

func (f fakeRevocations) TokenRevoked(_ context.Context, id resolver.Identity) (bool, error) {
	_, ok := f.h.revoked.Load(id.TokenID)
	return ok, nil
}

// start serves a harness; mutate may change the resolver's options.
func start(tb testing.TB, mutate func(*resolver.Options)) *harness {
	tb.Helper()
	h := &harness{reg: prometheus.NewRegistry(), l1: cache.NewL1(cache.L1Options{})}
	h.ready.Store(true)
	h.revoked.Store("revoked-jti", true)
	idp := jwkstest.NewServer(keys().good)
	tb.Cleanup(idp.Close)
	v, err := jwks.New(jwks.Options{Issuer: issuer, URL: idp.URL(), Audiences: []string{audience}, Leeway: time.Second, ExtraClaims: []string{"email"}})
	if err != nil {
		tb.Fatalf("jwks.New: %v", err)
	}
	if err := v.Start(context.Background()); err != nil {
		tb.Fatalf("jwks Start: %v", err)
	}
	tb.Cleanup(v.Close)
	o := resolver.Options{
		Tokens:        countingTokens{jwks.NewSet(v), &h.verifies},
		Sessions:      fakeSessions{},
		Revocations:   fakeRevocations{h},
		Cache:         h.l1,
		CacheTTL:      5 * time.Second,
		TokenHeaders:  []string{"X-Stack-Access-Token"},
		SessionCookie: "session",
		ClaimHeaders:  []resolver.ClaimHeader{{Claim: "email", Header: "Email"}},
		Metrics:       resolver.NewMetrics(h.reg),
	}
	if mutate != nil {
		mutate(&o)
	}
	h.resolver = resolver.New(o)
	h.hsrv = extauthz.NewHealth(func(context.Context) bool { return h.ready.Load() }, time.Hour)
	h.gsrv = grpc.NewServer(extauthz.ServerOptions()...)
	extauthz.Register(h.gsrv, extauthz.New(h.resolver, nil), h.hsrv)
	conn := serve(tb, h.gsrv)
	h.auth = authv3.NewAuthorizationClient(conn)
	h.health = healthpb.NewHealthClient(conn)
	return h
}

// serve serves g on a loopback port until the test ends and returns a
// client connection to it.
func serve(tb testing.TB, g *grpc.Server) *grpc.ClientConn {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	go func() { _ = g.Serve(ln) }()
	tb.Cleanup(g.Stop)
	conn, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatalf("grpc.NewClient: %v", err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// claims returns the claims of a valid token for sub; mutate adds or
// deletes members.
func claims(sub string, mutate func(map[string]any)) map[string]any {
	c := jwkstest.Claims(issuer, sub, time.Hour)
	c["aud"] = audience
	if mutate != nil {
		mutate(c)
	}
	return c
}

func mint(sub string, mutate func(map[string]any)) string {
	return keys().good.Mint(claims(sub, mutate))
}

// aliceToken is verified, has the role admin, scopes read and write, and an
// email.
func aliceToken() string {
	return mint("alice", func(c map[string]any) {
		c["roles"] = []string{"admin"}
		c["email_verified"] = true
		c["email"] = "alice@example.com"
		c["scope"] = "read write"
	})
}

// request is a CheckRequest as Envoy sends it: lower-case header names in
// the headers map.
func request(headers, ext map[string]string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: "/app/page?q=1", Host: "app.example", Scheme: "https",
			Headers: headers,
		}},
		ContextExtensions: ext,
	}}
}

// rawRequest is a CheckRequest with encode_raw_headers: header_map entries
// with raw_value bytes, repeated names kept apart.
func rawRequest(kv ...string) *authv3.CheckRequest {
	r := request(nil, nil)
	hm := &corev3.HeaderMap{}
	for i := 0; i+1 < len(kv); i += 2 {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	r.Attributes.Request.Http.HeaderMap = hm
	return r
}

func (h *harness) check(tb testing.TB, req *authv3.CheckRequest) *authv3.CheckResponse {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := h.auth.Check(ctx, req)
	if err != nil {
		tb.Fatalf("Check: %v", err)
	}
	return resp
}

// answer is what a test compares of a CheckResponse: the gRPC code, the
// HTTP status Envoy would act on (200 for OK), the headers (lower-case name
// → value, "|"-joined when repeated; with their append action when it is
// not OVERWRITE_IF_EXISTS_OR_ADD), and the headers to remove.
type answer struct {
	Code    int32
	Status  int
	Headers map[string]string
	Remove  []string
	Body    string
}

func summarize(resp *authv3.CheckResponse) answer {
	a := answer{Code: resp.GetStatus().GetCode(), Headers: map[string]string{}}
	var hs []*corev3.HeaderValueOption
	switch r := resp.GetHttpResponse().(type) {
	case *authv3.CheckResponse_OkResponse:
		a.Status = http.StatusOK
		hs = r.OkResponse.GetHeaders()
		a.Remove = r.OkResponse.GetHeadersToRemove()
	case *authv3.CheckResponse_DeniedResponse:
		a.Status = int(r.DeniedResponse.GetStatus().GetCode())
		hs = r.DeniedResponse.GetHeaders()
		a.Body = r.DeniedResponse.GetBody()
	}
	for _, o := range hs {
		v := o.GetHeader().GetValue()
		if o.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			v += " (" + o.GetAppendAction().String() + ")"
		}
		if old, ok := a.Headers[o.GetHeader().GetKey()]; ok {
			v = old + "|" + v
		}
		a.Headers[o.GetHeader().GetKey()] = v
	}
	return a
}

func lower(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.ToLower(n)
	}
	return out
}
