// Package remote holds what the packages that call an identity provider
// share (introspect, profile, discovery): an HTTP client that always times
// out and never follows redirects, a bounded read of the answer, metrics
// by kind of call, and a strict reader of JSON objects that maps members to
// a resolver.Identity as JWT claims are mapped.
package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Kinds of remote calls, the values of the kind label.
const (
	KindIntrospection = "introspection"
	KindUserinfo      = "userinfo"
	KindStack         = "stack"
	KindDiscovery     = "discovery"
)

// Outcomes of remote calls, the values of the outcome label.
const (
	OutcomeOK       = "ok"       // a well-formed positive answer
	OutcomeRejected = "rejected" // a well-formed negative answer (inactive, 401)
	OutcomeInvalid  = "invalid"  // an answer that is not what the protocol says
	OutcomeError    = "error"    // unreachable or a 5xx
	OutcomeTimeout  = "timeout"
	OutcomeBusy     = "busy" // refused at once: MaxInFlight calls were open
)

// ErrTooLarge means an answer exceeded the size limit.
var ErrTooLarge = errors.New("remote: answer too large")

// DefaultTimeout bounds a remote call when the caller sets none.
const DefaultTimeout = 2 * time.Second

// MaxInFlight bounds the calls one client has open at once. A provider
// that hangs would otherwise hold a goroutine, and the proxy's connection
// to the resolver, per request until the timeout: at a few hundred
// requests a second that exhausts the proxy's connections and fails
// requests that need no remote call at all. Calls beyond it fail at once
// with ErrBusy (a 503).
const MaxInFlight = 64

// maxIdle is how many idle connections to one provider a client keeps.
const maxIdle = 16

// ErrBusy is returned for a call while MaxInFlight calls are open.
var ErrBusy = errors.New("remote: too many calls in flight to the provider")

// NewHTTPClient returns a client for calls to an identity provider: dial,
// TLS and header timeouts (Do bounds the whole call), at most MaxInFlight
// calls open at once, and no redirects, so that a token is only ever sent
// to the configured endpoint (a 3xx is an answer, which callers refuse).
func NewHTTPClient(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: min(timeout, 5*time.Second), KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = min(timeout, 5*time.Second)
	tr.ResponseHeaderTimeout = timeout
	tr.MaxIdleConnsPerHost = maxIdle
	return &http.Client{
		Transport: gate{next: tr, slots: make(chan struct{}, MaxInFlight)},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Answer is a remote call's status, headers and body.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends req with client, bounded by timeout (also when client has
// none), and reads at most maxBody bytes of the answer; a longer answer is
// ErrTooLarge. Errors wrap the cause, never the request's credentials.
func Do(client *http.Client, req *http.Request, timeout time.Duration, maxBody int64) (Answer, error) {
	ctx, cancel := context.WithTimeout(req.Context(), timeout)
	defer cancel()
	res, err := client.Do(req.WithContext(ctx)) //nolint:gosec // G704: the URL is the operator-configured, CheckURL-validated provider endpoint
	if err != nil {
		return Answer{}, scrub(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxBody+1))
	if err != nil {
		return Answer{}, scrub(err)
	}
	if int64(len(body)) > maxBody {
		return Answer{}, fmt.Errorf("%w (over %d bytes)", ErrTooLarge, maxBody)
	}
	return Answer{Status: res.StatusCode, Header: res.Header, Body: body}, nil
}

// scrub drops the URL from a *url.Error (it may carry a query), keeping
// the operation and the cause.
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// Outcome classifies a transport error for the outcome label.
func Outcome(err error) string {
	var ne net.Error
	if errors.Is(err, ErrBusy) {
		return OutcomeBusy
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return OutcomeTimeout
	}
	return OutcomeError
}

// IsJSON reports whether an answer's Content-Type is application/json
// (parameters such as charset allowed).
func IsJSON(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// CheckURL allows https, and http only to a loopback host: a token or a
// client secret sent over plain HTTP elsewhere could be read in transit.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("URL %q: %v", raw, err)
	}
	switch {
	case u.Scheme == "https" && u.Host != "":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	case u.Scheme == "http":
		return fmt.Errorf("URL %q: http:// is only allowed for a loopback host; use https://", raw)
	default:
		return fmt.Errorf("URL %q: want https://host/… (or http:// for a loopback host)", raw)
	}
	if u.User != nil || u.Fragment != "" {
		return fmt.Errorf("URL %q: no user info or fragment allowed", raw)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// gate is a RoundTripper that lets at most cap(slots) calls be open (until
// their answer's body is closed) and refuses the rest at once.
type gate struct {
	next  http.RoundTripper
	slots chan struct{}
}

func (g gate) RoundTrip(req *http.Request) (*http.Response, error) {
	select {
	case g.slots <- struct{}{}:
	default:
		if req.Body != nil {
			req.Body.Close() // a RoundTripper must close it, even on error
		}
		return nil, ErrBusy
	}
	res, err := g.next.RoundTrip(req)
	if err != nil {
		<-g.slots
		return nil, err
	}
	res.Body = &releaseOnClose{ReadCloser: res.Body, release: func() { <-g.slots }}
	return res, nil
}

// releaseOnClose frees a gate's slot once, when the body is closed.
type releaseOnClose struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (r *releaseOnClose) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(r.release)
	return err
}
