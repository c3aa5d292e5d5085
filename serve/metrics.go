package serve

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the service's Prometheus metrics, in a registry of its own
// (several services in one process, as in tests, do not collide).
type metrics struct {
	reg          *prometheus.Registry
	pairStarted  *prometheus.CounterVec
	pairLinked   *prometheus.CounterVec
	pairFailed   *prometheus.CounterVec
	handshake    prometheus.Histogram
	linkDuration prometheus.Histogram
	reconnects   prometheus.Counter
	webhooks     *prometheus.CounterVec
	storeLatency *prometheus.HistogramVec
}

func newMetrics(s *Service) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.pairStarted = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "walink_pairings_started_total", Help: "Link attempts started, by method (qr, code)."}, []string{"method"})
	m.pairLinked = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "walink_pairings_linked_total", Help: "Link attempts that linked a device, by method."}, []string{"method"})
	m.pairFailed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "walink_pairings_failed_total", Help: "Link attempts that failed, by method and reason."}, []string{"method", "reason"})
	m.handshake = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "walink_handshake_duration_seconds", Help: "Time of a session's first connect (dial and handshake).", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)})
	m.linkDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "walink_link_duration_seconds", Help: "Time from starting a new link to the device being paired.", Buckets: prometheus.ExponentialBuckets(0.25, 2, 12)})
	m.reconnects = prometheus.NewCounter(prometheus.CounterOpts{Name: "walink_reconnects_total", Help: "Connections of a linked session re-established after a loss."})
	m.webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "walink_webhook_deliveries_total", Help: "Webhook delivery attempts by result (delivered, failed, dropped)."}, []string{"result"})
	m.storeLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "walink_store_duration_seconds", Help: "Latency of the service's database operations.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"op"})
	m.reg.MustRegister(m.pairStarted, m.pairLinked, m.pairFailed, m.handshake, m.linkDuration, m.reconnects, m.webhooks, m.storeLatency,
		&statusCollector{s: s}, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

var sessionsDesc = prometheus.NewDesc("walink_sessions", "Sessions by status.", []string{"status"}, nil)
var subscribersDesc = prometheus.NewDesc("walink_sse_subscribers", "Open Server-Sent Events streams.", nil, nil)

// statusCollector counts sessions by status at scrape time.
type statusCollector struct{ s *Service }

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sessionsDesc
	ch <- subscribersDesc
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[Status]int{}
	c.s.mu.Lock()
	all := make([]*session, 0, len(c.s.sessions))
	for _, ss := range c.s.sessions {
		all = append(all, ss)
	}
	c.s.mu.Unlock()
	for _, ss := range all {
		ss.mu.Lock()
		counts[ss.rec.Status]++
		ss.mu.Unlock()
	}
	for _, st := range Statuses {
		ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(counts[st]), string(st))
	}
	ch <- prometheus.MustNewConstMetric(subscribersDesc, prometheus.GaugeValue, float64(c.s.hub.count()))
}

// MetricsHandler serves the Prometheus metrics (unauthenticated: mount it
// on its own listen address, or leave it to Handler, which authenticates).
func (s *Service) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.met.reg, promhttp.HandlerOpts{})
}
