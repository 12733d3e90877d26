package extauthz_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/authresolver/authresolver/extauthz"
	"github.com/authresolver/authresolver/internal/syncbuf"
	"github.com/authresolver/authresolver/resolver"
)

// keep are the headers the decision table compares; the others (times)
// vary per token.
var keep = []string{
	"x-auth-session-valid", "x-auth-user-id", "x-auth-user-roles", "x-auth-credential",
	"x-auth-session-id", "x-auth-error", "x-auth-email", "www-authenticate", "retry-after",
	"content-type", "cache-control",
}

func pick(a answer) answer {
	got := answer{Code: a.Code, Status: a.Status, Headers: map[string]string{}}
	for _, k := range keep {
		if v, ok := a.Headers[k]; ok {
			got.Headers[k] = v
		}
	}
	return got
}

const (
	ok           = int32(codes.OK)
	unauthn      = int32(codes.Unauthenticated)
	denied       = int32(codes.PermissionDenied)
	unavailable  = int32(codes.Unavailable)
	jsonType     = "application/json"
	noStore      = "no-store"
	wwwMissing   = "Bearer"
	wwwInvalidTo = `Bearer error="invalid_token", error_description=`
)

// deny401 is the answer for an invalid credential with reason code.
func deny401(code string) answer {
	return answer{Code: unauthn, Status: 401, Headers: map[string]string{
		"x-auth-session-valid": "false", "x-auth-error": code,
		"www-authenticate": "<invalid_token>", "content-type": jsonType, "cache-control": noStore,
	}}
}

func deny403(code string) answer {
	return answer{Code: denied, Status: 403, Headers: map[string]string{
		"x-auth-session-valid": "true", "x-auth-error": code,
		"content-type": jsonType, "cache-control": noStore,
	}}
}

var missing = answer{Code: unauthn, Status: 401, Headers: map[string]string{
	"x-auth-session-valid": "false", "www-authenticate": wwwMissing,
	"content-type": jsonType, "cache-control": noStore,
}}

var anonymousOK = answer{Code: ok, Status: 200, Headers: map[string]string{"x-auth-session-valid": "false"}}

func TestCheckDecisions(t *testing.T) {
	h := start(t, nil)
	alice := aliceToken()
	bob := mint("bob", nil)
	anon := mint("anon-1", func(c map[string]any) { c["is_anonymous"] = true })
	aliceOK := answer{Code: ok, Status: 200, Headers: map[string]string{
		"x-auth-session-valid": "true", "x-auth-user-id": "alice", "x-auth-user-roles": "admin",
		"x-auth-credential": "jwt", "x-auth-email": "alice@example.com",
	}}
	bobOK := answer{Code: ok, Status: 200, Headers: map[string]string{
		"x-auth-session-valid": "true", "x-auth-user-id": "bob", "x-auth-credential": "jwt",
	}}
	bearer := func(tok string) map[string]string { return map[string]string{"authorization": "Bearer " + tok} }
	ext := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name string
		req  *authv3.CheckRequest
		want answer
	}{
		{"bearer", request(bearer(alice), nil), aliceOK},
		{"bearer scheme in lower case", request(map[string]string{"authorization": "bearer " + alice}, nil), aliceOK},
		{"header name in any case", request(map[string]string{"Authorization": "Bearer " + alice}, nil), aliceOK},
		{"token header", request(map[string]string{"x-stack-access-token": alice}, nil), aliceOK},
		{"session cookie", request(map[string]string{"cookie": "theme=dark; session=" + sessionBob}, nil), answer{Code: ok, Status: 200, Headers: map[string]string{
			"x-auth-session-valid": "true", "x-auth-user-id": "bob", "x-auth-credential": "session", "x-auth-session-id": "h-bob",
		}}},
		{"raw header_map", rawRequest("authorization", "Bearer "+alice, ":path", "/app"), aliceOK},

		{"no credential", request(nil, nil), missing},
		{"another scheme is no credential", request(map[string]string{"authorization": "Basic dXNlcjpwdw=="}, nil), missing},
		{"bearer without token", request(bearer(""), nil), deny401("malformed_authorization")},
		{"not a JWT", request(bearer("abc"), nil), deny401("malformed_token")},
		{"two tokens merged by Envoy", request(bearer(alice+",Bearer "+bob), nil), deny401("malformed_token")},
		{"too large", request(bearer(strings.Repeat("a", resolver.MaxCredentialBytes+1)), nil), deny401("token_too_large")},
		{"bad signature", request(bearer(keys().other.Mint(claims("alice", nil))), nil), deny401("invalid_signature")},
		{"unknown key", request(bearer(keys().other.WithID("k9").Mint(claims("alice", nil))), nil), deny401("unknown_key")},
		{"unknown issuer", request(bearer(mint("alice", func(c map[string]any) { c["iss"] = "https://evil.test" })), nil), deny401("unknown_issuer")},
		{"wrong audience", request(bearer(mint("alice", func(c map[string]any) { c["aud"] = "other" })), nil), deny401("invalid_audience")},
		{"expired", request(bearer(mint("alice", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })), nil), deny401("token_expired")},
		{"not yet valid", request(bearer(mint("alice", func(c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() })), nil), deny401("token_not_yet_valid")},
		{"no exp", request(bearer(mint("alice", func(c map[string]any) { delete(c, "exp") })), nil), deny401("missing_claim")},
		{"alg none", request(bearer(keys().good.Sign(map[string]any{"alg": "none"}, claims("alice", nil))), nil), deny401("unsupported_algorithm")},
		{"revoked", request(bearer(mint("alice", func(c map[string]any) { c["jti"] = "revoked-jti" })), nil), deny401("token_revoked")},
		{"session not found", request(map[string]string{"cookie": "session=bm9zdWNoc2Vzc2lvbg"}, nil), deny401("session_not_found")},
		{"empty session cookie", request(map[string]string{"cookie": "session="}, nil), deny401("malformed_session")},
		{"bearer decides over a cookie", request(map[string]string{"authorization": "Bearer abc", "cookie": "session=" + sessionBob}, nil), deny401("malformed_token")},
		{"two authorization entries in header_map", rawRequest("authorization", "Bearer "+alice, "authorization", "Bearer "+alice), deny401("malformed_authorization")},

		{"role met", request(bearer(alice), ext("role", "admin")), aliceOK},
		{"role missing", request(bearer(bob), ext("role", "admin")), deny403("insufficient_role")},
		{"scope met", request(bearer(alice), ext("scope", "write")), aliceOK},
		{"scope missing", request(bearer(bob), ext("scope", "write")), deny403("insufficient_scope")},
		{"verified missing", request(bearer(bob), ext("verified", "true")), deny403("insufficient_verification")},
		{"anonymous refused", request(bearer(anon), ext("anonymous", "false")), deny403("insufficient_authentication")},
		{"anonymous allowed by default", request(bearer(anon), nil), answer{Code: ok, Status: 200, Headers: map[string]string{
			"x-auth-session-valid": "true", "x-auth-user-id": "anon-1", "x-auth-credential": "jwt",
		}}},
		{"escaped value", request(bearer(alice), ext("role", "admin&optional=true")), deny403("insufficient_role")},
		{"unknown key, valid credential", request(bearer(alice), ext("roles", "admin")), deny403("invalid_requirement")},
		{"unknown key, no credential", request(nil, ext("roles", "admin")), missing},
		{"unknown key, invalid credential", request(bearer("abc"), ext("roles", "admin")), deny401("malformed_token")},
		{"empty value", request(bearer(alice), ext("role", "")), deny403("invalid_requirement")},
		{"unparsable optional", request(nil, ext("optional", "yes")), missing},
		{"unparsable optional, valid credential", request(bearer(alice), ext("optional", "yes")), deny403("invalid_requirement")},

		{"optional, no credential", request(nil, ext("optional", "true")), anonymousOK},
		{"optional, invalid credential", request(bearer("abc"), ext("optional", "true")), anonymousOK},
		{"optional, valid credential", request(bearer(bob), ext("optional", "true")), bobOK},
		{"client requirement header ignored", request(map[string]string{"authorization": "Bearer " + bob, "x-authresolver-require": "role=admin"}, nil), bobOK},
		{"client optional header ignored", request(map[string]string{"x-authresolver-require": "optional=true"}, nil), missing},

		{"store unreachable", request(map[string]string{"cookie": "session=" + sessionDown}, nil), answer{Code: unavailable, Status: 503, Headers: map[string]string{
			"x-auth-error": "unavailable", "retry-after": "1", "content-type": jsonType, "cache-control": noStore,
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.check(t, tt.req)
			full := summarize(resp)
			got := pick(full)
			if v := got.Headers["www-authenticate"]; strings.HasPrefix(v, wwwInvalidTo) {
				got.Headers["www-authenticate"] = "<invalid_token>"
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			checkInvariants(t, h, full)
		})
	}
}

// checkInvariants holds for every answer: an allow names every identity
// header exactly once, to set (overwriting) or to remove; a denial carries
// the JSON body of its error code and no Content-Length.
func checkInvariants(t *testing.T, h *harness, a answer) {
	t.Helper()
	if a.Status == http.StatusOK {
		var named []string
		for k := range a.Headers {
			named = append(named, k)
		}
		named = append(named, a.Remove...)
		slices.Sort(named)
		want := lower(h.resolver.IdentityHeaders())
		slices.Sort(want)
		if diff := cmp.Diff(want, named); diff != "" {
			t.Errorf("set + removed headers (-identity headers +named):\n%s", diff)
		}
		return
	}
	if _, ok := a.Headers["content-length"]; ok {
		t.Errorf("denial carries content-length")
	}
	var body struct{ Error, Message string }
	if err := json.Unmarshal([]byte(a.Body), &body); err != nil {
		t.Fatalf("denial body %q: %v", a.Body, err)
	}
	want := a.Headers["x-auth-error"]
	if want == "" {
		want = "missing_credential"
	}
	if body.Error != want {
		t.Errorf("body error = %q, want %q", body.Error, want)
	}
}

// TestCheckRemovesForgedHeaders: a client's own X-Auth-* headers never
// reach the upstream; those the answer sets are overwritten, the others
// removed (a user without roles must not keep a forged role).
func TestCheckRemovesForgedHeaders(t *testing.T) {
	h := start(t, nil)
	forged := map[string]string{
		"authorization":        "Bearer " + mint("bob", nil),
		"x-auth-user-id":       "alice",
		"x-auth-user-roles":    "admin",
		"x-auth-user-verified": "true",
		"x-auth-email":         "alice@example.com",
		"x-auth-session-id":    "h-alice",
		"x-auth-error":         "",
	}
	for _, tt := range []struct {
		name string
		ext  map[string]string
	}{{"allow", nil}, {"optional without identity", map[string]string{"optional": "true"}}} {
		t.Run(tt.name, func(t *testing.T) {
			hdr := forged
			if tt.ext != nil {
				hdr = map[string]string{"x-auth-user-id": "alice", "x-auth-user-roles": "admin"}
			}
			a := summarize(h.check(t, request(hdr, tt.ext)))
			if a.Status != 200 {
				t.Fatalf("status %d, want 200", a.Status)
			}
			for name, v := range forged {
				if name == "authorization" {
					continue
				}
				if got, set := a.Headers[name]; set && got == v && v != "false" {
					t.Errorf("%s: forged value %q kept", name, v)
				}
				if _, set := a.Headers[name]; !set && !slices.Contains(a.Remove, name) {
					t.Errorf("%s: neither overwritten nor removed", name)
				}
			}
			if tt.ext == nil && a.Headers["x-auth-user-id"] != "bob" {
				t.Errorf("x-auth-user-id = %q, want bob", a.Headers["x-auth-user-id"])
			}
		})
	}
}

// TestCheckMatchesHTTP: the same headers give the same decision over gRPC
// (Envoy's map, or header_map with repeated entries) as over HTTP /resolve,
// so duplicate credentials are refused the same way on both transports.
func TestCheckMatchesHTTP(t *testing.T) {
	h := start(t, nil)
	alice := aliceToken()
	for _, tt := range []struct {
		name string
		kv   []string
	}{
		{"one bearer", []string{"authorization", "Bearer " + alice}},
		{"two authorization", []string{"authorization", "Bearer " + alice, "authorization", "Basic eDp5"}},
		{"two cookie lines, same session", []string{"cookie", "session=" + sessionBob, "cookie", "session=" + sessionBob}},
		{"two cookie lines, two sessions", []string{"cookie", "session=" + sessionBob, "cookie", "session=bm9zdWNoc2Vzc2lvbg"}},
		{"one cookie line, two sessions", []string{"cookie", "session=bm9zdWNoc2Vzc2lvbg; session=" + sessionBob}},
		{"two token headers", []string{"x-stack-access-token", alice, "x-stack-access-token", alice}},
		{"authorization and cookie", []string{"authorization", "Bearer " + alice, "cookie", "session=" + sessionBob}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/resolve", nil)
			for i := 0; i < len(tt.kv); i += 2 {
				r.Header.Add(tt.kv[i], tt.kv[i+1])
			}
			rec := httptest.NewRecorder()
			h.resolver.ServeHTTP(rec, r)
			want := [2]string{http.StatusText(rec.Code), rec.Header().Get("X-Auth-Error")}
			a := summarize(h.check(t, rawRequest(tt.kv...)))
			got := [2]string{http.StatusText(a.Status), a.Headers["x-auth-error"]}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("gRPC answer differs from HTTP (-http +grpc):\n%s", diff)
			}
		})
	}
}

// TestCheckRawValueAndValueDisagree: Envoy fills one of value and
// raw_value; when both differ, neither is chosen and the credential is
// refused as given twice.
func TestCheckRawValueAndValueDisagree(t *testing.T) {
	h := start(t, nil)
	r := rawRequest("authorization", "Bearer "+aliceToken())
	r.Attributes.Request.Http.HeaderMap.Headers[0].Value = "Bearer " + mint("bob", nil)
	got := pick(summarize(h.check(t, r)))
	if diff := cmp.Diff(deny401("malformed_authorization").Headers["x-auth-error"], got.Headers["x-auth-error"]); diff != "" {
		t.Errorf("x-auth-error (-want +got):\n%s", diff)
	}
}

// TestCheckOneVerification: 1,000 concurrent Checks with one new token cost
// one verification (the resolver's singleflight and L1 cache), and count
// as decisions in the resolver's metrics.
func TestCheckOneVerification(t *testing.T) {
	// A TTL no slow run outlasts: the point is that concurrent Checks join
	// one verification, not when the entry expires.
	h := start(t, func(o *resolver.Options) { o.CacheTTL = time.Hour })
	req := request(map[string]string{"authorization": "Bearer " + aliceToken()}, nil)
	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for range n {
		wg.Go(func() {
			resp, err := h.auth.Check(context.Background(), req)
			switch {
			case err != nil:
				errs <- err.Error()
			case resp.GetStatus().GetCode() != ok:
				errs <- resp.GetStatus().String()
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("a Check failed: %s", e)
	}
	if got := h.verifies.Load(); got != 1 {
		t.Errorf("verifications = %d, want 1", got)
	}
	if got := decisions(t, h, "allow"); got != n {
		t.Errorf("authresolver_decisions_total{outcome=allow} = %v, want %d", got, n)
	}
}

func decisions(t *testing.T, h *harness, outcome string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != "authresolver_decisions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// TestCheckRevocationAfterCachedAllow: once a revocation has returned
// (store updated, L1 invalidated as the bus does), a Check that an L1 entry
// would have allowed is denied.
func TestCheckRevocationAfterCachedAllow(t *testing.T) {
	h := start(t, nil)
	tok := mint("alice", func(c map[string]any) { c["jti"] = "jti-race" })
	req := request(map[string]string{"authorization": "Bearer " + tok}, nil)
	if a := summarize(h.check(t, req)); a.Status != 200 {
		t.Fatalf("before revocation: status %d, want 200", a.Status)
	}
	h.revoked.Store("jti-race", true)
	h.l1.Invalidate(resolver.TokenTag("jti-race"))
	a := summarize(h.check(t, req))
	if got := [2]any{a.Status, a.Headers["x-auth-error"]}; got != [2]any{401, "token_revoked"} {
		t.Errorf("after revocation: %v, want [401 token_revoked]", got)
	}
}

// TestCheckLogsNoQuery: the path logged with a denial never has the
// client's query, which may carry a token.
func TestCheckLogsNoQuery(t *testing.T) {
	var buf syncbuf.Buffer
	h := start(t, func(o *resolver.Options) { o.Logger = slog.New(slog.NewJSONHandler(&buf, nil)) })
	r := request(map[string]string{"authorization": "Bearer abc"}, nil)
	r.Attributes.Request.Http.Path = "/app/page?access_token=secret-token"
	h.check(t, r)
	if out := buf.String(); !strings.Contains(out, `"path":"/app/page"`) || strings.Contains(out, "secret-token") {
		t.Errorf("log = %s, want the path without its query", out)
	}
}

func TestCheckAllowsAnyMethod(t *testing.T) {
	h := start(t, nil)
	for _, m := range []string{"POST", "DELETE", "HEAD", ""} {
		r := request(map[string]string{"authorization": "Bearer " + mint("bob", nil)}, nil)
		r.Attributes.Request.Http.Method = m
		if a := summarize(h.check(t, r)); a.Status != 200 {
			t.Errorf("method %q: status %d, want 200", m, a.Status)
		}
	}
}

func TestHealth(t *testing.T) {
	h := start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	status := func(service string) string {
		t.Helper()
		resp, err := h.health.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			return status.Code(err).String()
		}
		return resp.GetStatus().String()
	}
	type row struct{ Server, Authz, Unknown string }
	got := func() row { return row{status(""), status(extauthz.AuthorizationService), status("other")} }

	if diff := cmp.Diff(row{"SERVING", "SERVING", "NotFound"}, got()); diff != "" {
		t.Errorf("ready (-want +got):\n%s", diff)
	}
	h.ready.Store(false)
	if diff := cmp.Diff(row{"NOT_SERVING", "NOT_SERVING", "NotFound"}, got()); diff != "" {
		t.Errorf("not ready (-want +got):\n%s", diff)
	}
	h.ready.Store(true)
	watch, err := h.health.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := watch.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch: %v %v, want SERVING", resp, err)
	}
	h.hsrv.Close() // shutting down
	if resp, err := watch.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("watch after Close: %v %v, want NOT_SERVING", resp, err)
	}
	if _, err := watch.Recv(); err != io.EOF {
		t.Errorf("watch after Close: %v, want the stream to end", err)
	}
	if diff := cmp.Diff(row{"NOT_SERVING", "NOT_SERVING", "NotFound"}, got()); diff != "" {
		t.Errorf("closed (-want +got):\n%s", diff)
	}
	// With the watch ended, a graceful stop does not wait for it.
	h.gsrv.GracefulStop()
}

func TestServiceName(t *testing.T) {
	if got, want := extauthz.AuthorizationService, authv3.Authorization_ServiceDesc.ServiceName; got != want {
		t.Errorf("AuthorizationService = %q, want %q", got, want)
	}
}

// panicky is a Checker whose Check panics.
type panicky struct{}

func (panicky) IdentityHeaders() []string { return []string{"X-Auth-User-Id"} }

func (panicky) Check(http.ResponseWriter, *http.Request, resolver.Requirement, error) {
	panic("boom")
}

// TestCheckPanicIsUnavailable: a panicking check answers 503 UNAVAILABLE
// (never an allow, never a gRPC error that failure_mode_allow could turn
// into one), is logged, and the server goes on serving.
func TestCheckPanicIsUnavailable(t *testing.T) {
	var buf syncbuf.Buffer
	s := extauthz.New(panicky{}, slog.New(slog.NewJSONHandler(&buf, nil)))
	testUnavailable(t, s)
	if !strings.Contains(buf.String(), "boom") {
		t.Errorf("log = %q, want the panic", buf.String())
	}
	// A status that is not HTTP's is refused as net/http refuses it.
	testUnavailable(t, extauthz.New(badStatus{}, nil))
}

// badStatus is a Checker that answers a status no HTTP server could send.
type badStatus struct{ panicky }

func (badStatus) Check(w http.ResponseWriter, _ *http.Request, _ resolver.Requirement, _ error) {
	w.WriteHeader(42)
}

func testUnavailable(t *testing.T, s *extauthz.Server) {
	t.Helper()
	for range 2 {
		resp, err := s.Check(context.Background(), request(nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		a := summarize(resp)
		if got := [3]any{a.Code, a.Status, a.Headers["retry-after"]}; got != [3]any{unavailable, 503, "1"} {
			t.Errorf("answer = %v, want [UNAVAILABLE 503 1]", got)
		}
	}
}
