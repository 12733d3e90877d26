package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The load generator speaks just enough HTTP/1.1 over keep-alive connections
// to send a prepared request and read a response with Content-Length. It
// costs a fraction of net/http's client, so that on a small machine the cores
// go to the servers under test rather than to the generator.

// requestFunc appends the next request of connection conn to buf. It returns
// nil when there is nothing left to send (scenario 3 running out of tokens).
type requestFunc func(buf []byte, conn int) []byte

// sample is what one load run measured.
type sample struct {
	requests int
	errors   int
	elapsed  time.Duration
	lat      []time.Duration // per successful request
	lag      []time.Duration // open loop only: hand-over to a connection - scheduled time
	sent     []time.Duration // open loop only: latency from the actual send
	firstErr error
}

func (s *sample) add(o sample) {
	s.requests += o.requests
	s.errors += o.errors
	s.elapsed += o.elapsed
	s.lat = append(s.lat, o.lat...)
	s.lag = append(s.lag, o.lag...)
	s.sent = append(s.sent, o.sent...)
	if s.firstErr == nil {
		s.firstErr = o.firstErr
	}
}

type client struct {
	addr string
	conn net.Conn
	br   *bufio.Reader
}

func (c *client) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

func (c *client) dial() error {
	conn, err := net.DialTimeout("tcp", c.addr, 2*time.Second)
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

// roundTrip sends req and reads the response's status, dialling if needed.
// Any failure closes the connection, so the next call starts afresh.
func (c *client) roundTrip(req []byte) (int, error) {
	if c.conn == nil {
		if err := c.dial(); err != nil {
			return 0, err
		}
	}
	_ = c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write(req); err != nil {
		c.close()
		return 0, err
	}
	status, closing, err := readResponse(c.br)
	if err != nil || closing {
		c.close()
	}
	return status, err
}

var (
	contentLength    = []byte("content-length:")
	transferEncoding = []byte("transfer-encoding:")
	connClose        = []byte("connection: close")
)

// readResponse reads one response and discards its body. closing reports a
// "Connection: close" (NGINX ends a connection after keepalive_requests).
func readResponse(br *bufio.Reader) (status int, closing bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	n := 0
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		if len(line) <= 2 {
			break
		}
		switch {
		case hasPrefixFold(line, contentLength):
			n, err = strconv.Atoi(string(bytes.TrimSpace(line[len(contentLength):])))
			if err != nil {
				return 0, false, fmt.Errorf("bad Content-Length %q", line)
			}
		case hasPrefixFold(line, transferEncoding):
			return 0, false, errors.New("chunked responses are not supported")
		case hasPrefixFold(line, connClose):
			closing = true
		}
	}
	if _, err := br.Discard(n); err != nil {
		return 0, false, err
	}
	return status, closing, nil
}

func hasPrefixFold(b, prefix []byte) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], prefix)
}

// closedLoop runs conns connections for d, each sending its next request as
// soon as the previous response is in (like wrk).
func closedLoop(addr string, conns int, d time.Duration, next requestFunc) sample {
	results := make([]sample, conns)
	clients := make([]*client, conns)
	for i := range clients { // connect before the clock starts
		clients[i] = &client{addr: addr}
		if err := clients[i].dial(); err != nil {
			return sample{errors: 1, firstErr: err}
		}
	}
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			defer c.close()
			r := &results[i]
			r.lat = make([]time.Duration, 0, 1<<14)
			var buf []byte
			for {
				buf = next(buf[:0], i)
				if buf == nil {
					return
				}
				t0 := time.Now()
				status, err := c.roundTrip(buf)
				t1 := time.Now()
				r.count(status, err, t1.Sub(t0))
				if t1.After(end) {
					return
				}
			}
		})
	}
	wg.Wait()
	var total sample
	for _, r := range results {
		total.add(r)
	}
	total.elapsed = time.Since(start)
	return total
}

func (r *sample) count(status int, err error, lat time.Duration) {
	r.requests++
	if err == nil && status != 200 {
		err = fmt.Errorf("status %d", status)
	}
	if err != nil {
		r.errors++
		if r.firstErr == nil {
			r.firstErr = err
		}
		return
	}
	r.lat = append(r.lat, lat)
}

// openLoop sends rate requests per second for d on a fixed schedule, over up
// to conns connections. Latency is measured from each request's scheduled
// send time, not from when a connection was free to send it, so a stall is
// charged to every request it delayed (no coordinated omission).
func openLoop(addr string, rate, conns int, d time.Duration, next requestFunc) sample {
	type job struct{ due time.Time }
	jobs := make(chan job, rate) // a second of backlog before the schedule itself slips
	results := make([]sample, conns)
	clients := make([]*client, conns)
	for i := range clients {
		clients[i] = &client{addr: addr}
		if err := clients[i].dial(); err != nil {
			return sample{errors: 1, firstErr: err}
		}
	}
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			defer c.close()
			r := &results[i]
			var buf []byte
			for j := range jobs {
				buf = next(buf[:0], i)
				t0 := time.Now()
				status, err := c.roundTrip(buf)
				r.count(status, err, time.Since(j.due))
				r.sent = append(r.sent, time.Since(t0))
			}
		})
	}
	// The schedule slips when the generator itself is late (no free core,
	// timer granularity): lag records by how much, to tell the generator's
	// share of the latency from the server's. time.Sleep wakes up to a
	// millisecond late when the runtime is idle, so the schedule sleeps on
	// its own thread with nanosleep and almost no timer slack.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, 29 /* PR_SET_TIMERSLACK */, 1000 /* ns */, 0)
	defer syscall.RawSyscall(syscall.SYS_PRCTL, 29, 0 /* back to the default */, 0)
	interval := time.Second / time.Duration(rate)
	n := int(d / interval)
	lag := make([]time.Duration, 0, n)
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			ts := syscall.NsecToTimespec(int64(wait))
			_ = syscall.Nanosleep(&ts, nil)
		}
		jobs <- job{due}
		lag = append(lag, time.Since(due))
	}
	close(jobs)
	wg.Wait()
	total := sample{lag: lag}
	for _, r := range results {
		total.add(r)
	}
	total.elapsed = time.Since(start)
	return total
}
