// Package extauthz serves Envoy's gRPC external authorization API,
// envoy.service.auth.v3.Authorization/Check (Envoy, Istio
// envoyExtAuthzGrpc, Envoy Gateway, Contour), from the resolver's decisions,
// and the gRPC health service for the same listener.
//
// A CheckRequest is answered by the resolver exactly as /resolve answers an
// HTTP forward-auth request, through a ResponseWriter that records the
// answer, so decisions, caches and metrics are shared with the HTTP
// endpoints. Only the transport differs: credentials come from the request
// headers Envoy forwards, requirements only from the route's
// context_extensions, and the answer is turned into an OkHttpResponse (the
// identity headers, overwriting, plus headers_to_remove for every identity
// header the answer does not set) or a DeniedHttpResponse.
package extauthz

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"

	"github.com/authresolver/authresolver/resolver"
)

// Checker answers one authorization request as the resolve endpoints do,
// with the route's requirement given by the caller. *resolver.Handler is
// one.
type Checker interface {
	Check(w http.ResponseWriter, r *http.Request, req resolver.Requirement, reqErr error)
	IdentityHeaders() []string
}

var _ Checker = (*resolver.Handler)(nil)

// Server implements envoy.service.auth.v3.Authorization.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	checker  Checker
	log      *slog.Logger
	identity []headerName
	pool     sync.Pool // *recorder
}

// headerName is a header name as the resolver writes it (canonical) and as
// Envoy wants it (lower case).
type headerName struct{ canonical, lower string }

// New returns a Server answering from c, logging to log (nil: nowhere). It
// does no I/O.
func New(c Checker, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{checker: c, log: log}
	for _, n := range c.IdentityHeaders() {
		s.identity = append(s.identity, headerName{n, strings.ToLower(n)})
	}
	s.pool.New = func() any { return &recorder{header: make(http.Header, 16)} }
	return s
}

// Check answers Envoy's authorization request. It never returns an error:
// every outcome, the resolver being unable to decide included, is a
// CheckResponse, so that a gateway's failure_mode_allow (which applies only
// to a failed call) cannot turn it into an allow.
func (s *Server) Check(ctx context.Context, in *authv3.CheckRequest) (resp *authv3.CheckResponse, err error) {
	defer func() {
		// net/http survives a panicking handler; grpc-go does not. One bad
		// request must not take the process down, nor be allowed.
		if p := recover(); p != nil {
			s.log.ErrorContext(ctx, "extauthz: panic in Check", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			resp, err = panicked, nil
		}
	}()
	attrs := in.GetAttributes()
	h := attrs.GetRequest().GetHttp()
	req, reqErr := requirement(attrs.GetContextExtensions())
	path, _, _ := strings.Cut(h.GetPath(), "?") // the query may carry secrets: never logged
	method := h.GetMethod()
	if method == "" {
		method = http.MethodGet
	}
	r := (&http.Request{
		Method: method,
		URL:    &url.URL{Path: path},
		Header: requestHeaders(h),
		Proto:  "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}).WithContext(ctx)

	rec := s.pool.Get().(*recorder)
	defer s.put(rec)
	s.checker.Check(rec, r, req, reqErr)
	if rec.status == http.StatusOK {
		return s.allow(rec), nil
	}
	return deny(rec), nil
}

func (s *Server) put(rec *recorder) {
	clear(rec.header)
	rec.status = 0
	rec.body = rec.body[:0]
	s.pool.Put(rec)
}

// requirement reads the route's requirement from Envoy's context
// extensions, whose keys and values are those of the /resolve query. They
// are set per route by the gateway configuration; a client cannot add any.
// The map is re-encoded as a query so that the same parser, with its
// fail-closed rules, reads it.
func requirement(ext map[string]string) (resolver.Requirement, error) {
	if len(ext) == 0 {
		return resolver.Requirement{}, nil
	}
	q := make(url.Values, len(ext))
	for k, v := range ext {
		q[k] = []string{v}
	}
	return resolver.ParseRequirement(q.Encode(), true)
}

// requestHeaders builds the request's header from Envoy's lower-case map,
// or from header_map when Envoy sends raw headers (encode_raw_headers). Names
// are canonicalised, so that the resolver reads "authorization" as
// Authorization; a name given twice (header_map keeps repeated headers apart,
// and a map may hold two spellings of one name) becomes a repeated header,
// which the resolver refuses for credentials exactly as over HTTP.
func requestHeaders(h *authv3.AttributeContext_HttpRequest) http.Header {
	m, raw := h.GetHeaders(), h.GetHeaderMap().GetHeaders()
	hdr := make(http.Header, len(m)+len(raw))
	// Sorted, so that two spellings of one name keep a fixed order (the
	// first session cookie wins).
	for _, k := range sortedKeys(m) {
		add(hdr, k, m[k])
	}
	for _, hv := range raw {
		switch v := hv.GetValue(); {
		case len(hv.GetRawValue()) == 0:
			add(hdr, hv.GetKey(), v)
		case v == "" || v == string(hv.GetRawValue()):
			add(hdr, hv.GetKey(), string(hv.GetRawValue()))
		default:
			// Envoy sets one of the two. Refuse to choose: both become
			// values, and a credential given twice is a denial.
			add(hdr, hv.GetKey(), v)
			add(hdr, hv.GetKey(), string(hv.GetRawValue()))
		}
	}
	return hdr
}

func sortedKeys(m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func add(h http.Header, name, value string) {
	k := http.CanonicalHeaderKey(name)
	h[k] = append(h[k], value)
}

// allow turns a 200 into an OkHttpResponse: each identity header the answer
// sets replaces any copy on the request, and every other identity header is
// removed, so a client-forged one never reaches the upstream.
func (s *Server) allow(rec *recorder) *authv3.CheckResponse {
	n := 0
	for _, name := range s.identity {
		if len(rec.header[name.canonical]) > 0 {
			n++
		}
	}
	opts := make([]corev3.HeaderValueOption, n)
	vals := make([]corev3.HeaderValue, n)
	ok := &authv3.OkHttpResponse{
		Headers:         make([]*corev3.HeaderValueOption, 0, n),
		HeadersToRemove: make([]string, 0, len(s.identity)-n),
	}
	for _, name := range s.identity {
		vs := rec.header[name.canonical]
		if len(vs) == 0 {
			ok.HeadersToRemove = append(ok.HeadersToRemove, name.lower)
			continue
		}
		i := len(ok.Headers)
		vals[i].Key, vals[i].Value = name.lower, vs[0]
		opts[i].Header = &vals[i]
		opts[i].AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		ok.Headers = append(ok.Headers, &opts[i])
	}
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
	}
}

// deny turns any other answer into a DeniedHttpResponse that Envoy sends to
// the client as it is: the status, the headers (WWW-Authenticate, the error
// and Session-Valid headers, Retry-After, Cache-Control, Content-Type) and
// the JSON body. A 503 is a denial too, with the gRPC code UNAVAILABLE: it
// is not error_response, which failure_mode_allow would turn into an allow.
func deny(rec *recorder) *authv3.CheckResponse {
	names := make([]string, 0, len(rec.header))
	for k := range rec.header {
		if k != "Content-Length" { // Envoy sets it from the body
			names = append(names, k)
		}
	}
	slices.Sort(names)
	d := &authv3.DeniedHttpResponse{
		Status:  &typev3.HttpStatus{Code: typev3.StatusCode(rec.status)},
		Headers: make([]*corev3.HeaderValueOption, 0, len(names)),
		Body:    string(rec.body),
	}
	for _, k := range names {
		for _, v := range rec.header[k] {
			d.Headers = append(d.Headers, &corev3.HeaderValueOption{
				Header:       &corev3.HeaderValue{Key: strings.ToLower(k), Value: v},
				AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
			})
		}
	}
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: grpcCode(rec.status)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: d},
	}
}

// panicked answers a Check that panicked: 503, as when the resolver
// cannot decide.
var panicked = &authv3.CheckResponse{
	Status: &rpcstatus.Status{Code: int32(codes.Unavailable)},
	HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
		Status: &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable},
		Headers: []*corev3.HeaderValueOption{{
			Header:       &corev3.HeaderValue{Key: "retry-after", Value: "1"},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		}},
	}},
}

// grpcCode is the CheckResponse status for an HTTP denial. Envoy denies on
// any code but OK; the code tells gateways' logs and metrics why.
func grpcCode(status int32) int32 {
	switch status {
	case http.StatusUnauthorized:
		return int32(codes.Unauthenticated)
	case http.StatusServiceUnavailable:
		return int32(codes.Unavailable)
	}
	return int32(codes.PermissionDenied)
}

// recorder is the http.ResponseWriter the resolver answers into.
type recorder struct {
	header http.Header
	status int32
	body   []byte
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status != 0 {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("extauthz: invalid status code %d", code)) // as net/http does
	}
	r.status = int32(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	r.body = append(r.body, b...)
	return len(b), nil
}
