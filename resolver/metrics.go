package resolver

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Decision outcomes, the values of the outcome label.
const (
	outcomeAllow     = "allow"     // 200 with identity
	outcomeAnonymous = "anonymous" // 200 without identity (optional=true)
	outcomeDeny      = "deny"      // 401
	outcomeForbid    = "forbid"    // 403
	outcomeError     = "error"     // 503
)

// Cache tiers, the values of the tier label.
const (
	tierL1 = "l1"
	tierL2 = "l2"
)

// Metrics counts decisions, their latency and the cache's work. A nil
// *Metrics measures nothing.
type Metrics struct {
	decisions   *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	cache       *prometheus.CounterVec
	collapses   prometheus.Counter
	revocations *prometheus.CounterVec
	allow       prometheus.Counter
	allowLat    prometheus.Observer
	l1Hit       prometheus.Counter
}

// NewMetrics registers the resolver's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authresolver_decisions_total",
			Help: "Resolve decisions by outcome and reason code.",
		}, []string{"outcome", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "authresolver_resolve_duration_seconds",
			Help:    "Time to answer a resolve request, by outcome.",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .1, .5},
		}, []string{"outcome"}),
	}
	m.cache = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authresolver_cache_requests_total",
		Help: "Decision cache look-ups by tier (l1 in process, l2 Redis) and result (hit, miss).",
	}, []string{"tier", "result"})
	m.collapses = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "authresolver_cache_collapsed_total",
		Help: "Requests that waited for a concurrent request's verification or lookup of the same credential instead of doing their own.",
	})
	m.revocations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authresolver_revocation_check_failures_total",
		Help: "JWT revocation checks that could not reach the store, by mode (closed: answered 503, open: allowed).",
	}, []string{"mode"})
	reg.MustRegister(m.decisions, m.latency, m.cache, m.collapses, m.revocations)
	m.allow = m.decisions.WithLabelValues(outcomeAllow, "")
	m.allowLat = m.latency.WithLabelValues(outcomeAllow)
	m.l1Hit = m.cache.WithLabelValues(tierL1, "hit")
	return m
}

func (m *Metrics) cacheResult(tier string, hit bool) {
	switch {
	case m == nil:
	case hit && tier == tierL1:
		m.l1Hit.Inc()
	case hit:
		m.cache.WithLabelValues(tier, "hit").Inc()
	default:
		m.cache.WithLabelValues(tier, "miss").Inc()
	}
}

func (m *Metrics) collapsed() {
	if m != nil {
		m.collapses.Inc()
	}
}

func (m *Metrics) revocationCheckFailed(mode string) {
	if m != nil {
		m.revocations.WithLabelValues(mode).Inc()
	}
}

func (m *Metrics) observe(outcome string, reason Reason, d time.Duration) {
	if m == nil {
		return
	}
	if outcome == outcomeAllow {
		m.allow.Inc()
		m.allowLat.Observe(d.Seconds())
		return
	}
	m.decisions.WithLabelValues(outcome, string(reason)).Inc()
	m.latency.WithLabelValues(outcome).Observe(d.Seconds())
}
