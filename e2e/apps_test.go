package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The apps behind the proxies in the hardening tests see headers the way
// PHP, WSGI, Rack and CGI do: as variables named HTTP_ + the header name in
// upper case with "-" and "." as "_", the last header of a name winning. An
// identity header the app reads is such a variable, whatever spelling put
// it there.

// cgiName is the variable a CGI-style app reads a header name as.
func cgiName(header string) string {
	return "HTTP_" + strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == '.':
			return '_'
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, header)
}

// newCGIApp starts the CGI-style echo app: it answers 200 with a JSON object
// of the HTTP_* variables a CGI app would see for the request, computed from
// the header lines exactly as they arrived (names as sent, in order). It
// reads one request per connection (it answers Connection: close), so the
// bytes read on a connection are that request.
func newCGIApp(tb testing.TB) string {
	tb.Helper()
	type rawKey struct{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		raw := r.Context().Value(rawKey{}).(*recordingConn).head()
		vars := map[string]string{}
		for _, line := range strings.Split(raw, "\r\n")[1:] {
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			vars[cgiName(name)] = strings.TrimSpace(value) // last wins, as in PHP
		}
		w.Header().Set("Connection", "close")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", "cgi")
		_ = json.NewEncoder(w).Encode(vars)
	}))
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, rawKey{}, c.(*recordingConn))
	}
	srv.Listener = &recordingListener{Listener: srv.Listener}
	srv.Start()
	tb.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// recordingListener hands out connections that keep what was read on them.
type recordingListener struct{ net.Listener }

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: c}, nil
}

type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	if c.buf.Len() < 1<<20 {
		c.buf.Write(p[:n])
	}
	c.mu.Unlock()
	return n, err
}

// head returns the request line and header lines read so far.
func (c *recordingConn) head() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, _, _ := strings.Cut(c.buf.String(), "\r\n\r\n")
	return h
}

// phpApp is a script for PHP's built-in server: it answers with the HTTP_*
// entries of $_SERVER, what a PHP application reads identity headers from.
const phpApp = `<?php
header('Content-Type: application/json');
header('X-Upstream: php');
$vars = [];
foreach ($_SERVER as $k => $v) {
    if (strncmp($k, 'HTTP_', 5) === 0) {
        $vars[$k] = $v;
    }
}
echo json_encode((object) $vars);
`

// newPHPApp runs phpApp in PHP's built-in server (php -S) and returns its
// address.
func newPHPApp(tb testing.TB) string {
	tb.Helper()
	bin := lookPath(tb, "php", "php-cli")
	dir := tb.TempDir()
	script := filepath.Join(dir, "app.php")
	if err := os.WriteFile(script, []byte(phpApp), 0o644); err != nil {
		tb.Fatal(err)
	}
	addr := func(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
	port := onFreePort(tb, "php", func(port int) *process {
		cmd := exec.Command(bin, "-n", "-S", addr(port), script)
		cmd.Dir = dir
		p, err := startProcess(tb, "php", cmd, nil)
		if err != nil {
			tb.Fatal(err)
		}
		return p
	}, func(p *process, port int) error {
		return waitHTTP(p, "http://"+addr(port)+"/", http.StatusOK)
	})
	return addr(port)
}

// appVars decodes what a CGI-style app (newCGIApp, newPHPApp) saw, failing
// the test if the answer did not come from it.
func appVars(tb testing.TB, r *response) map[string]string {
	tb.Helper()
	if up := r.Header.Get("X-Upstream"); up != "cgi" && up != "php" {
		tb.Fatalf("answer did not come from the app: %d %v %.300s", r.Status, r.Header, r.Body)
	}
	vars := map[string]string{}
	if err := json.Unmarshal(r.Body, &vars); err != nil {
		tb.Fatalf("app answer: %v: %s", err, r.Body)
	}
	return vars
}

// tapMode says what the tap does with the next auth requests.
type tapMode struct {
	status int  // answer this status (with forged identity headers) instead of forwarding
	hang   bool // never answer
	reset  bool // close the connection without an answer
}

// tap sits between a proxy and the resolver: it forwards every request and
// records what the resolver was sent, or answers as told by its mode.
type tap struct {
	Addr string

	mu   sync.Mutex
	mode tapMode
	seen []tapRequest
}

// tapRequest is what the resolver was sent.
type tapRequest struct {
	Method   string
	RawQuery string
	Header   http.Header
	Body     int
	TE       []string
	Length   int64
}

func newTap(tb testing.TB, resolverAddr string) *tap {
	tb.Helper()
	t := &tap{}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: resolverAddr})
	hangs := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		t.mu.Lock()
		t.seen = append(t.seen, tapRequest{Method: r.Method, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: len(body), TE: r.TransferEncoding, Length: r.ContentLength})
		mode := t.mode
		t.mu.Unlock()
		switch {
		case mode.hang:
			select {
			case <-r.Context().Done():
			case <-hangs:
			}
		case mode.reset:
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
		case mode.status != 0:
			w.Header().Set("X-Auth-Session-Valid", "true")
			w.Header().Set("X-Auth-User-Id", "tap-forged")
			w.Header().Set("Location", "/elsewhere")
			w.WriteHeader(mode.status)
		default:
			proxy.ServeHTTP(w, r)
		}
	}))
	tb.Cleanup(func() { close(hangs); srv.Close() })
	t.Addr = srv.Listener.Addr().String()
	return t
}

func (t *tap) setMode(m tapMode) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mode = m
}

// take returns the requests recorded since the last take.
func (t *tap) take() []tapRequest {
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := t.seen
	t.seen = nil
	return seen
}

// raw sends request (request line and header lines, "\r\n"-separated,
// without the blank line) plus body to base's host as written, byte for
// byte, and reads the answer. It is for what Go's client would normalize:
// header name spellings and order, odd targets, HTTP/1.0.
func raw(tb testing.TB, base, request, body string) *response {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(conn, request+"\r\n\r\n"+body); err != nil {
		tb.Fatal(err)
	}
	method, _, _ := strings.Cut(request, " ")
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		tb.Fatalf("%q: %v", strings.SplitN(request, "\r\n", 2)[0], err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// lines joins header lines for raw.
func lines(ls ...string) string { return strings.Join(ls, "\r\n") }
