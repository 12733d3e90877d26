package cache_test

import (
	"context"
	"github.com/authresolver/authresolver/internal/syncbuf"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/authresolver/authresolver/cache"
	"github.com/authresolver/authresolver/internal/redistest"
	"github.com/authresolver/authresolver/resolver"
)

// busReplica is one replica's L1 and bus, with its own Redis connection.
type busReplica struct {
	l1     *cache.L1
	shared *cache.Shared
	bus    *cache.Bus
	reg    *prometheus.Registry
	logs   *syncbuf.Buffer
	stop   func()
}

const testChannel = testPrefix + "invalidate"

// startReplica runs a bus over its own client to srv and waits until it is
// subscribed.
func startReplica(t *testing.T, srv *redistest.Server) *busReplica {
	t.Helper()
	client := redis.NewClient(&redis.Options{
		Addr: srv.Addr(), DialTimeout: 200 * time.Millisecond,
		ReadTimeout: time.Second, WriteTimeout: time.Second, ContextTimeoutEnabled: true,
	})
	r := &busReplica{l1: cache.NewL1(cache.L1Options{Disabled: true}), reg: prometheus.NewRegistry(), logs: &syncbuf.Buffer{}}
	r.shared = cache.NewShared(client, cache.SharedOptions{Prefix: testPrefix})
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r.bus = cache.NewBus(client, testChannel, r.l1, r.shared, log, cache.NewMetrics(r.reg, r.l1))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.bus.Run(ctx)
	}()
	r.stop = func() {
		cancel()
		<-done
		client.Close()
	}
	t.Cleanup(r.stop)
	r.waitUp(t, true)
	return r
}

// waitUp waits until the bus reports the subscription up (L1 on) or down.
func (r *busReplica) waitUp(t *testing.T, up bool) {
	t.Helper()
	want := 0.0
	if up {
		want = 1
	}
	eventually(t, 5*time.Second, "subscription state", func() bool {
		return r.l1.Enabled() == up && metricValue(t, r.reg, "authresolver_cache_subscription_up") == want
	})
}

// eventually polls cond every millisecond until it holds, and returns how
// long that took.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

func has(c *cache.L1, k resolver.Key) bool {
	_, ok := c.Get(k, time.Now())
	return ok
}

func TestBusInvalidatesEveryReplica(t *testing.T) {
	srv := redistest.Start(t)
	a, b := startReplica(t, srv), startReplica(t, srv)
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	revoked, kept := key(1, 1), key(2, 2)
	for _, r := range []*busReplica{a, b} {
		set(r.l1, revoked, sessionVerdict("u1", "h1", exp))
		set(r.l1, kept, sessionVerdict("u1", "h2", exp))
	}
	cred := resolver.Credential{Kind: resolver.CredentialSession, Value: testSession}
	_, _, gen, _ := a.shared.Get(ctx, cred)
	if err := a.shared.Set(ctx, cred, sharedIdentity(exp), time.Minute, gen); err != nil {
		t.Fatal(err)
	}

	if err := a.bus.Invalidate(ctx, resolver.SessionTag("h1")); err != nil {
		t.Fatal(err)
	}
	if has(a.l1, revoked) {
		t.Error("the invalidating replica still has the entry when Invalidate returns")
	}
	if has(b.l1, revoked) {
		// Invalidate waits for every subscribed replica's confirmation.
		t.Error("replica B still has the entry when Invalidate returns")
	}
	for name, r := range map[string]*busReplica{"A": a, "B": b} {
		if !has(r.l1, kept) {
			t.Errorf("replica %s dropped an entry with another tag", name)
		}
	}
	if _, until, _, _ := b.shared.Get(ctx, cred); !until.IsZero() {
		t.Error("the L2 entry is still used after Invalidate")
	}
	eventually(t, time.Second, "B counts the invalidation", func() bool {
		return metricValue(t, b.reg, "authresolver_cache_invalidations_received_total") == 1
	})
}

// TestBusSubscriptionLoss: when the pub/sub connection is killed, the bus
// notices, turns L1 off (flushing it), resubscribes and turns it on again;
// nothing cached before the loss survives it.
func TestBusSubscriptionLoss(t *testing.T) {
	srv := redistest.Start(t)
	a, b := startReplica(t, srv), startReplica(t, srv)
	exp := time.Now().Add(time.Hour)
	k := key(3, 3)
	set(b.l1, k, tokenVerdict("u1", "j1", exp))

	if n, err := redistest.Do(srv.Addr(), "CLIENT", "KILL", "TYPE", "pubsub"); err != nil || n != "2" {
		t.Fatalf("CLIENT KILL TYPE pubsub = %q, %v", n, err)
	}
	took := eventually(t, 5*time.Second, "down and up again in the log", func() bool {
		logs := b.logs.String()
		down := strings.Index(logs, "subscription down")
		return down >= 0 && strings.Contains(logs[down:], "subscription up")
	})
	t.Logf("replica B resubscribed %v after the kill", took)
	b.waitUp(t, true)
	if has(b.l1, k) {
		t.Error("an entry cached before the subscription was lost survived it")
	}

	// Invalidation works again.
	set(b.l1, k, tokenVerdict("u1", "j1", exp))
	if err := a.bus.Invalidate(context.Background(), resolver.TokenTag("j1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "replica B drops the entry after resubscribing", func() bool { return !has(b.l1, k) })
}

// TestBusRedisDown: with Redis gone the bus keeps L1 off, Invalidate
// reports the failure but still drops the local entries, and everything
// resumes when Redis is back.
func TestBusRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	a, b := startReplica(t, srv), startReplica(t, srv)
	exp := time.Now().Add(time.Hour)
	k := key(4, 4)

	srv.Stop()
	a.waitUp(t, false)
	b.waitUp(t, false)
	set(a.l1, k, sessionVerdict("u1", "h1", exp))
	if has(a.l1, k) {
		t.Error("L1 stores while the subscription is down")
	}
	if err := a.bus.Invalidate(context.Background(), resolver.SessionTag("h1")); err == nil {
		t.Error("Invalidate with Redis down: no error")
	}

	srv.Restart()
	a.waitUp(t, true)
	b.waitUp(t, true)
	set(b.l1, k, sessionVerdict("u1", "h1", exp))
	if err := a.bus.Invalidate(context.Background(), resolver.SessionTag("h1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "replica B drops the entry after Redis is back", func() bool { return !has(b.l1, k) })
}

func TestBusStop(t *testing.T) {
	srv := redistest.Start(t)
	r := startReplica(t, srv)
	start := time.Now()
	r.stop() // cancels Run's context and waits for it to return
	if took := time.Since(start); took > time.Second {
		t.Errorf("Run returned %v after its context was cancelled", took)
	}
	if r.l1.Enabled() {
		t.Error("L1 is still on after the bus stopped: nothing would invalidate it")
	}
}

// TestBusLifecycle: building a bus leaves the L1 alone (constructors have
// no side effects); Run keeps it off from its start until subscribed, even
// when it was built enabled.
func TestBusLifecycle(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	l1 := cache.NewL1(cache.L1Options{})
	k := key(1, 1)
	set(l1, k, sessionVerdict("u1", "h1", time.Now().Add(time.Hour)))
	b := cache.NewBus(client, testChannel, l1, nil, nil, nil)
	if !l1.Enabled() || !has(l1, k) {
		t.Fatal("NewBus changed the L1")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.Run(ctx)
	if l1.Enabled() || has(l1, k) {
		t.Error("after Run without a subscription the L1 is on or holds an entry")
	}
	if cache.NewL1(cache.L1Options{Disabled: true}).Enabled() {
		t.Error("an L1 built Disabled is on")
	}
}

// TestBusUnconfirmedInvalidation: a subscriber that never confirms (a
// replica stuck, or of a version that does not acknowledge) makes
// Invalidate fail after AckTimeout, so the revocation call reports that it
// may not be in force everywhere yet, instead of claiming it is.
func TestBusUnconfirmedInvalidation(t *testing.T) {
	srv := redistest.Start(t)
	a := startReplica(t, srv)
	a.bus.AckTimeout = 300 * time.Millisecond
	silent := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { silent.Close() })
	ps := silent.Subscribe(context.Background(), testChannel)
	t.Cleanup(func() { ps.Close() })
	if _, err := ps.Receive(context.Background()); err != nil { // the subscription confirmation
		t.Fatal(err)
	}
	start := time.Now()
	err := a.bus.Invalidate(context.Background(), resolver.SessionTag("h1"))
	if err == nil || !strings.Contains(err.Error(), "1 of 2") {
		t.Fatalf("Invalidate = %v, want unconfirmed: 1 of 2", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Invalidate took %v, want about the 300ms AckTimeout", took)
	}
}

// TestBusForeignMessageFlushes: a message that is not "<id> <tag>" is
// honoured by flushing the whole cache, never ignored.
func TestBusForeignMessageFlushes(t *testing.T) {
	srv := redistest.Start(t)
	a := startReplica(t, srv)
	k := key(7, 7)
	set(a.l1, k, sessionVerdict("u1", "h9", time.Now().Add(time.Hour)))
	if _, err := redistest.Do(srv.Addr(), "PUBLISH", testChannel, resolver.SessionTag("h1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the foreign message flushes L1", func() bool { return !has(a.l1, k) })
}
