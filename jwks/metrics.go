package jwks

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes, the values of the outcome label.
const (
	outcomeSuccess     = "success"
	outcomeError       = "error"
	outcomeRateLimited = "rate_limited"
)

// Metrics are the Prometheus metrics of JWKS fetching, shared by the
// verifiers of all issuers. A nil *Metrics records nothing.
type Metrics struct {
	refresh *prometheus.CounterVec
	forced  *prometheus.CounterVec
	keys    *prometheus.GaugeVec
	age     *ageCollector
}

// NewMetrics creates the metrics and registers them on reg (none when reg
// is nil). It panics if they are already registered there, as
// prometheus.MustRegister does.
//
//   - authresolver_jwks_refresh_total{issuer,outcome}: JWKS fetches,
//     background and forced; outcome success or error.
//   - authresolver_jwks_forced_refetch_total{issuer,outcome}: refetches for
//     an unknown key id or missing keys; outcome success, error or
//     rate_limited (skipped within the cooldown).
//   - authresolver_jwks_keyset_age_seconds{issuer}: seconds since the last
//     successful fetch, computed at scrape; absent before the first.
//   - authresolver_jwks_keys{issuer}: usable signature keys in the set.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		refresh: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authresolver_jwks_refresh_total",
			Help: "JWKS fetches (background and forced) by issuer and outcome.",
		}, []string{"issuer", "outcome"}),
		forced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authresolver_jwks_forced_refetch_total",
			Help: "JWKS refetches forced by an unknown key id or missing keys, by issuer and outcome (success, error, rate_limited).",
		}, []string{"issuer", "outcome"}),
		keys: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authresolver_jwks_keys",
			Help: "Usable signature keys in the issuer's current key set.",
		}, []string{"issuer"}),
		age: &ageCollector{
			desc: prometheus.NewDesc("authresolver_jwks_keyset_age_seconds",
				"Seconds since the issuer's key set was last fetched successfully.",
				[]string{"issuer"}, nil),
			verifiers: make(map[string]*Verifier),
		},
	}
	if reg != nil {
		reg.MustRegister(m.refresh, m.forced, m.keys, m.age)
	}
	return m
}

// add makes v's series appear, with zero counts, so that rates and alerts
// work before the first event.
func (m *Metrics) add(v *Verifier) {
	if m == nil {
		return
	}
	for _, o := range []string{outcomeSuccess, outcomeError} {
		m.refresh.WithLabelValues(v.issuer, o)
	}
	for _, o := range []string{outcomeSuccess, outcomeError, outcomeRateLimited} {
		m.forced.WithLabelValues(v.issuer, o)
	}
	m.age.mu.Lock()
	m.age.verifiers[v.issuer] = v
	m.age.mu.Unlock()
}

func (m *Metrics) remove(v *Verifier) {
	if m == nil {
		return
	}
	m.age.mu.Lock()
	if m.age.verifiers[v.issuer] == v {
		delete(m.age.verifiers, v.issuer)
	}
	m.age.mu.Unlock()
	m.keys.DeleteLabelValues(v.issuer)
}

func (m *Metrics) refreshed(issuer, outcome string) {
	if m != nil {
		m.refresh.WithLabelValues(issuer, outcome).Inc()
	}
}

func (m *Metrics) forcedRefetch(issuer, outcome string) {
	if m != nil {
		m.forced.WithLabelValues(issuer, outcome).Inc()
	}
}

func (m *Metrics) setKeys(issuer string, n int) {
	if m != nil {
		m.keys.WithLabelValues(issuer).Set(float64(n))
	}
}

// ageCollector computes the key set age at scrape time, so that it grows
// while fetches fail instead of freezing at the last value set.
type ageCollector struct {
	desc      *prometheus.Desc
	mu        sync.Mutex
	verifiers map[string]*Verifier // by issuer
}

func (c *ageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *ageCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for issuer, v := range c.verifiers {
		at, ok := v.fetchedAt()
		if !ok {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v.now().Sub(at).Seconds(), issuer)
	}
}
