package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/authresolver/authresolver/internal/loadgen"
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

// closedLoop runs conns connections for d, each sending its next request as
// soon as the previous response is in (like wrk).
func closedLoop(addr string, conns int, d time.Duration, next requestFunc) sample {
	results := make([]sample, conns)
	clients := make([]*loadgen.Client, conns)
	for i := range clients { // connect before the clock starts
		clients[i] = &loadgen.Client{Addr: addr}
		if err := clients[i].Dial(); err != nil {
			return sample{errors: 1, firstErr: err}
		}
	}
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			defer c.Close()
			r := &results[i]
			r.lat = make([]time.Duration, 0, 1<<14)
			var buf []byte
			for {
				buf = next(buf[:0], i)
				if buf == nil {
					return
				}
				t0 := time.Now()
				status, _, err := c.RoundTrip(buf)
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

func (s *sample) count(status int, err error, lat time.Duration) {
	s.requests++
	if err == nil && status != 200 {
		err = fmt.Errorf("status %d", status)
	}
	if err != nil {
		s.errors++
		if s.firstErr == nil {
			s.firstErr = err
		}
		return
	}
	s.lat = append(s.lat, lat)
}

// openLoop sends rate requests per second for d on a fixed schedule, over up
// to conns connections. Latency is measured from each request's scheduled
// send time, not from when a connection was free to send it, so a stall is
// charged to every request it delayed (no coordinated omission).
func openLoop(addr string, rate, conns int, d time.Duration, next requestFunc) sample {
	type job struct{ due time.Time }
	jobs := make(chan job, rate) // a second of backlog before the schedule itself slips
	results := make([]sample, conns)
	clients := make([]*loadgen.Client, conns)
	for i := range clients {
		clients[i] = &loadgen.Client{Addr: addr}
		if err := clients[i].Dial(); err != nil {
			return sample{errors: 1, firstErr: err}
		}
	}
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			defer c.Close()
			r := &results[i]
			var buf []byte
			for j := range jobs {
				buf = next(buf[:0], i)
				t0 := time.Now()
				status, _, err := c.RoundTrip(buf)
				r.count(status, err, time.Since(j.due))
				r.sent = append(r.sent, time.Since(t0))
			}
		})
	}
	start := time.Now()
	lag := loadgen.Pace(context.Background(), rate, d, func(_ int, due time.Time) { jobs <- job{due} })
	close(jobs)
	wg.Wait()
	total := sample{lag: lag}
	for _, r := range results {
		total.add(r)
	}
	total.elapsed = time.Since(start)
	return total
}
