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

// Metrics counts decisions and their latency.
type Metrics struct {
	decisions *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	allow     prometheus.Counter
	allowLat  prometheus.Observer
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
	reg.MustRegister(m.decisions, m.latency)
	m.allow = m.decisions.WithLabelValues(outcomeAllow, "")
	m.allowLat = m.latency.WithLabelValues(outcomeAllow)
	return m
}

func (m *Metrics) observe(outcome string, reason Reason, d time.Duration) {
	if outcome == outcomeAllow {
		m.allow.Inc()
		m.allowLat.Observe(d.Seconds())
		return
	}
	m.decisions.WithLabelValues(outcome, string(reason)).Inc()
	m.latency.WithLabelValues(outcome).Observe(d.Seconds())
}
