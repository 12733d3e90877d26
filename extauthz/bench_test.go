package extauthz_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/authresolver/authresolver/extauthz"
	"github.com/authresolver/authresolver/resolver"
)

// noop answers every Check with one prepared response: the gRPC baseline
// for the same client, request and response size.
type noop struct {
	authv3.UnimplementedAuthorizationServer
	resp *authv3.CheckResponse
}

func (n noop) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return n.resp, nil
}

// BenchmarkCheck compares, over real gRPC on loopback with the same client
// and request (one ES256 token), authresolver's Check from the L1 cache, a
// no-op server answering the same allow (same headers), and Check with no
// cache (every request verifies the ES256 signature). It reports the p99
// latency as p99-ns and the process's CPU time per Check as cpu-ns/op. Compare the sub-benchmarks of one run:
//
//	go test -run '^$' -bench BenchmarkCheck -benchtime 3s -count 5 ./extauthz
func BenchmarkCheck(b *testing.B) {
	req := request(map[string]string{
		"authorization": "Bearer " + aliceToken(),
		"user-agent":    "bench", "accept": "*/*", ":authority": "app.example", ":path": "/app/page",
	}, nil)

	cached := start(b, nil)
	allow, err := cached.auth.Check(context.Background(), req)
	if err != nil || allow.GetStatus().GetCode() != 0 {
		b.Fatalf("Check = %v, %v; want an allow", allow, err)
	}
	g := grpc.NewServer(extauthz.ServerOptions()...)
	authv3.RegisterAuthorizationServer(g, noop{resp: proto.Clone(allow).(*authv3.CheckResponse)})
	baseline := authv3.NewAuthorizationClient(serve(b, g))
	uncached := start(b, func(o *resolver.Options) { o.Cache = nil })

	for _, bb := range []struct {
		name   string
		client authv3.AuthorizationClient
	}{
		{"noop", baseline},
		{"l1-hit", cached.auth},
		{"es256-uncached", uncached.auth},
	} {
		b.Run(bb.name, func(b *testing.B) { benchCheck(b, bb.client, req) })
	}
}

func benchCheck(b *testing.B, c authv3.AuthorizationClient, req *authv3.CheckRequest) {
	var mu sync.Mutex
	var all []time.Duration
	b.SetParallelism(8)
	cpu0 := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		lat := make([]time.Duration, 0, 1024)
		for pb.Next() {
			t0 := time.Now()
			resp, err := c.Check(context.Background(), req)
			lat = append(lat, time.Since(t0))
			if err != nil || resp.GetStatus().GetCode() != 0 {
				b.Errorf("Check = %v, %v", resp.GetStatus(), err)
				return
			}
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	b.StopTimer()
	// Process CPU (client and server both live here) per Check: on a busy
	// machine a steadier measure of the work than wall time.
	b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)*99/100].Nanoseconds()), "p99-ns")
	}
}

// BenchmarkServerCheck measures the adapter without the network: one Check
// from the L1 cache, called in process, against the resolver answering the
// same request over HTTP (ServeHTTP on /resolve).
//
//	go test -run '^$' -bench BenchmarkServerCheck -benchmem ./extauthz
func BenchmarkServerCheck(b *testing.B) {
	h := start(b, nil)
	tok := aliceToken()
	req := request(map[string]string{"authorization": "Bearer " + tok}, nil)
	s := extauthz.New(h.resolver, nil)
	b.Run("grpc-adapter", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if resp, _ := s.Check(context.Background(), req); resp.GetStatus().GetCode() != 0 {
				b.Fatal(resp.GetStatus())
			}
		}
	})
	b.Run("http-resolve", func(b *testing.B) {
		r := httptest.NewRequest("GET", "/resolve", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.resolver.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
		}
	})
}

// cpuTime returns the user and system CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
