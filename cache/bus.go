package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Bus carries invalidations between replicas over Redis pub/sub. Pub/sub
// loses messages while a connection is down, so whenever the subscription
// is not confirmed the bus disables the local L1 (flushing it) and enables
// it again once subscribed: a missed revocation can then be served from
// cache for no longer than the L1 TTL.
//
// Invalidate returns only once every subscribed replica has confirmed that
// it dropped the tag (or fails): a revocation call that returned is then in
// force on every replica, not merely on its way to them. Each message is
// "<id> <tag>"; a receiver invalidates the tag, then pushes to the list
// "<channel>:ack:<id>", and the sender waits for as many pushes as PUBLISH
// reported receivers.
type Bus struct {
	client  redis.UniversalClient
	channel string
	l1      *L1
	shared  *Shared // nil: no L2
	log     *slog.Logger
	metrics *Metrics
	up      bool // owned by Run's goroutine
	// AckTimeout bounds how long Invalidate waits for the replicas'
	// confirmations; NewBus sets DefaultAckTimeout.
	AckTimeout time.Duration
}

// DefaultAckTimeout is how long Invalidate waits for every replica to
// confirm an invalidation before it reports a failure.
const DefaultAckTimeout = 2 * time.Second

// ackTTL keeps a confirmation list no longer than any sender waits.
const ackTTL = 30 * time.Second

// errUnconfirmed is wrapped when a replica did not confirm in time.
var errUnconfirmed = errors.New("cache: invalidation not confirmed by every replica")

// NewBus returns a bus on channel (e.g. "authresolver:v1:invalidate").
// shared and metrics may be nil. l1 should be built with
// L1Options.Disabled: Run turns it on once subscribed.
func NewBus(client redis.UniversalClient, channel string, l1 *L1, shared *Shared, log *slog.Logger, m *Metrics) *Bus {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Bus{client: client, channel: channel, l1: l1, shared: shared, log: log, metrics: m, AckTimeout: DefaultAckTimeout}
}

// Invalidate applies a revocation's tag: the L2 generation moves on, the
// local L1 drops the tag at once, and every replica is told and confirms.
// It returns an error when Redis cannot be reached or a subscribed replica
// does not confirm within AckTimeout; the local L1 is still invalidated.
func (b *Bus) Invalidate(ctx context.Context, tag string) error {
	var errs []error
	if b.shared != nil {
		errs = append(errs, b.shared.Bump(ctx))
	}
	b.l1.Invalidate(tag)
	id := newMessageID()
	n, err := b.client.Publish(ctx, b.channel, id+" "+tag).Result()
	if err != nil {
		errs = append(errs, fmt.Errorf("cache: publish invalidation: %w", err))
	} else {
		errs = append(errs, b.awaitAcks(ctx, id, int(n)))
	}
	return errors.Join(errs...)
}

func newMessageID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

func (b *Bus) ackKey(id string) string { return b.channel + ":ack:" + id }

// awaitAcks waits for n confirmations of message id (each receiver,
// this replica included, pushes one).
func (b *Bus) awaitAcks(ctx context.Context, id string, n int) error {
	ctx, cancel := context.WithTimeout(ctx, b.AckTimeout)
	defer cancel()
	key := b.ackKey(id)
	defer func() {
		// A best-effort clean-up; the list expires anyway.
		_ = b.client.Del(context.WithoutCancel(ctx), key).Err()
	}()
	for got := 0; got < n; got++ {
		wait := time.Until(deadline(ctx))
		if wait < time.Millisecond {
			return fmt.Errorf("%w: %d of %d", errUnconfirmed, got, n)
		}
		if err := b.client.BLPop(ctx, wait, key).Err(); err != nil {
			return fmt.Errorf("%w: %d of %d: %w", errUnconfirmed, got, n, err)
		}
	}
	return nil
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline() // always set by awaitAcks
	return d
}

// apply invalidates what a message names and confirms it to the sender.
// A payload that is not "<id> <tag>" (a sender of another version) is
// still honoured, by flushing everything: never a missed revocation.
func (b *Bus) apply(ctx context.Context, payload string) {
	id, tag, ok := strings.Cut(payload, " ")
	if !ok || len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
		b.log.Warn("invalidation message of an unknown format: in-process cache flushed")
		b.l1.Flush()
		return
	}
	b.l1.Invalidate(tag)
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	key := b.ackKey(id)
	_, err := b.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.RPush(ctx, key, "1")
		p.Expire(ctx, key, ackTTL)
		return nil
	})
	if err != nil {
		// The sender times out and reports the revocation as not confirmed.
		b.log.Warn("invalidation applied but not confirmed", "error", err)
	}
}

// Run receives invalidations until ctx is done. It keeps the L1 off while
// the subscription is not confirmed, from its start on.
func (b *Bus) Run(ctx context.Context) {
	b.l1.SetEnabled(false)
	defer b.setUp(false)
	for ctx.Err() == nil {
		b.receive(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond): // then subscribe again
		}
	}
}

// idle is how long a quiet subscription waits before it pings, and how long
// it waits for the answer before it counts the connection as lost (a
// connection dropped silently by a NAT or firewall reports no error).
const idle = 5 * time.Second

// receive runs one subscription until it fails or ctx is done.
func (b *Bus) receive(ctx context.Context) {
	ps := b.client.Subscribe(ctx, b.channel)
	defer ps.Close()
	// A blocked receive does not watch ctx; closing the subscription ends it.
	defer context.AfterFunc(ctx, func() { ps.Close() })()
	pinged := false
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, idle)
		var netErr interface{ Timeout() bool }
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return
		case errors.As(err, &netErr) && netErr.Timeout() && b.up && !pinged:
			// Quiet channel: prove the connection is alive.
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err = ps.Ping(pctx)
			cancel()
			if err == nil {
				pinged = true
				continue
			}
			fallthrough
		default:
			b.setUp(false)
			b.log.Debug("invalidation subscription lost", "error", err)
			return
		}
		pinged = false // any traffic proves the connection
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				b.l1.Flush() // anything cached while we were not listening is suspect
				b.setUp(true)
			}
		case *redis.Message:
			b.metrics.received()
			b.apply(ctx, m.Payload)
		}
	}
}

// setUp records whether the subscription is confirmed, turning L1 on or off.
// Only Run's goroutine calls it.
func (b *Bus) setUp(up bool) {
	if up == b.up {
		return
	}
	b.up = up
	b.l1.SetEnabled(up)
	b.metrics.subscribed(up)
	if up {
		b.log.Info("invalidation subscription up: in-process cache on", "channel", b.channel)
	} else {
		b.log.Warn("invalidation subscription down: in-process cache off until it is back", "channel", b.channel)
	}
}

// Metrics counts the bus's and the L1's state.
type Metrics struct {
	invalidations prometheus.Counter
	subscription  prometheus.Gauge
}

// NewMetrics registers the cache metrics on reg, including gauges of l1's size.
func NewMetrics(reg prometheus.Registerer, l1 *L1) *Metrics {
	m := &Metrics{
		invalidations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authresolver_cache_invalidations_received_total",
			Help: "Invalidations received from other replicas over Redis pub/sub.",
		}),
		subscription: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "authresolver_cache_subscription_up",
			Help: "1 while the invalidation subscription is confirmed (the in-process cache is on), else 0.",
		}),
	}
	entries := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "authresolver_cache_entries",
		Help: "Decisions held in the in-process cache.",
	}, func() float64 { n, _ := l1.Len(); return float64(n) })
	size := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "authresolver_cache_bytes",
		Help: "Approximate bytes held by the in-process cache.",
	}, func() float64 { _, b := l1.Len(); return float64(b) })
	reg.MustRegister(m.invalidations, m.subscription, entries, size)
	return m
}

func (m *Metrics) received() {
	if m != nil {
		m.invalidations.Inc()
	}
}

func (m *Metrics) subscribed(up bool) {
	if m == nil {
		return
	}
	if up {
		m.subscription.Set(1)
	} else {
		m.subscription.Set(0)
	}
}
