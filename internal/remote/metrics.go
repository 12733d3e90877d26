package remote

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts calls to identity providers by kind and outcome, and
// their latency. A nil *Metrics measures nothing.
type Metrics struct {
	calls   *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

// NewMetrics registers the remote-call metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authresolver_remote_requests_total",
			Help: "Calls to the identity provider by kind (introspection, userinfo, stack, discovery) and outcome (ok, rejected, invalid, error, timeout).",
		}, []string{"kind", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "authresolver_remote_request_duration_seconds",
			Help:    "Time of calls to the identity provider, by kind.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"kind"}),
	}
	reg.MustRegister(m.calls, m.latency)
	return m
}

// Observe records one call of kind that began at start.
func (m *Metrics) Observe(kind, outcome string, start time.Time) {
	if m == nil {
		return
	}
	m.calls.WithLabelValues(kind, outcome).Inc()
	m.latency.WithLabelValues(kind).Observe(time.Since(start).Seconds())
}
