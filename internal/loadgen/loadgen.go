// Package loadgen is the load generator of the bench and chaos harnesses: a
// minimal HTTP/1.1 client over keep-alive connections, and an open-loop
// schedule. It speaks just enough HTTP to send a prepared request and read a
// response with Content-Length, at a fraction of net/http's client cost, so
// that on a small machine the cores go to the servers under test.
package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// Client is one keep-alive connection to Addr, dialled on first use and
// again after any failure.
type Client struct {
	Addr string
	// Capture, when set, is a header name in lower case with its colon
	// ("x-auth-user-id:"); RoundTrip returns that header's value.
	Capture []byte
	// Timeout bounds each round trip (default 10 s).
	Timeout time.Duration

	conn net.Conn
	br   *bufio.Reader
}

// Close closes the connection, if any.
func (c *Client) Close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// Dial connects now, so that a later round trip does not pay for it.
func (c *Client) Dial() error {
	conn, err := net.DialTimeout("tcp", c.Addr, 2*time.Second)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	c.conn = conn
	if c.br == nil {
		c.br = bufio.NewReaderSize(conn, 16<<10)
	} else {
		c.br.Reset(conn)
	}
	return nil
}

// RoundTrip sends req and reads the response's status (and the captured
// header), dialling if needed. Any failure closes the connection, so the
// next call starts afresh.
func (c *Client) RoundTrip(req []byte) (status int, captured string, err error) {
	if c.conn == nil {
		if err := c.Dial(); err != nil {
			return 0, "", err
		}
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	_ = c.conn.SetDeadline(time.Now().Add(timeout))
	if _, err := c.conn.Write(req); err != nil {
		c.Close()
		return 0, "", err
	}
	r, err := ReadResponse(c.br, c.Capture)
	if err != nil || r.Closing {
		c.Close()
	}
	return r.Status, r.Captured, err
}

// Response is what ReadResponse keeps of a response.
type Response struct {
	Status   int
	Closing  bool   // "Connection: close" (NGINX ends a connection after keepalive_requests)
	Captured string // the value of the captured header
}

var (
	contentLength    = []byte("content-length:")
	transferEncoding = []byte("transfer-encoding:")
	connClose        = []byte("connection: close")
)

// ReadResponse reads one response and discards its body. capture, when not
// nil, names a header (lower case, with its colon) whose value to keep.
func ReadResponse(br *bufio.Reader, capture []byte) (Response, error) {
	var r Response
	line, err := br.ReadSlice('\n')
	if err != nil {
		return r, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return r, fmt.Errorf("bad status line %q", line)
	}
	r.Status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return r, fmt.Errorf("bad status line %q", line)
	}
	n := 0
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return r, err
		}
		if len(line) <= 2 {
			break
		}
		switch {
		case hasPrefixFold(line, contentLength):
			n, err = strconv.Atoi(string(bytes.TrimSpace(line[len(contentLength):])))
			if err != nil {
				return r, fmt.Errorf("bad Content-Length %q", line)
			}
		case hasPrefixFold(line, transferEncoding):
			return r, errors.New("chunked responses are not supported")
		case hasPrefixFold(line, connClose):
			r.Closing = true
		case capture != nil && hasPrefixFold(line, capture):
			r.Captured = string(bytes.TrimSpace(line[len(capture):]))
		}
	}
	if _, err := br.Discard(n); err != nil {
		return r, err
	}
	return r, nil
}

func hasPrefixFold(b, prefix []byte) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], prefix)
}

// Pace calls fire rate times a second for d (or until ctx is done), on a
// fixed schedule: the i-th call is due at start + i/rate. fire must hand
// the work over and return at once. Pace returns, for each call, by how much
// it was late (the generator's own share of any latency: no free core, timer
// granularity).
func Pace(ctx context.Context, rate int, d time.Duration, fire func(i int, due time.Time)) []time.Duration {
	// time.Sleep wakes up to a millisecond late when the runtime is idle,
	// so the schedule sleeps on its own thread with nanosleep and almost no
	// timer slack.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, 29 /* PR_SET_TIMERSLACK */, 1000 /* ns */, 0)
	defer func() { _, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, 29, 0 /* back to the default */, 0) }()
	interval := time.Second / time.Duration(rate)
	n := int(d / interval)
	lag := make([]time.Duration, 0, n)
	start := time.Now()
	for i := range n {
		if i%256 == 0 && ctx.Err() != nil {
			break
		}
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			ts := syscall.NsecToTimespec(int64(wait))
			_ = syscall.Nanosleep(&ts, nil)
		}
		fire(i, due)
		lag = append(lag, time.Since(due))
	}
	return lag
}
