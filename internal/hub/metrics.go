package hub

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socsync/socsync/internal/store"
	"github.com/socsync/socsync/internal/throttle"
)

// remoteMetrics counts every request the throttle transport sends and every time a budget or
// a remote held one back, by API (never by tenant: thousands of tenants would mean thousands of
// series; per-tenant figures are in /api/v1/tenants).
type remoteMetrics struct {
	sent      *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	throttled *prometheus.CounterVec
}

func newRemoteMetrics() *remoteMetrics {
	return &remoteMetrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "socsync_remote_requests_total",
			Help: "Requests sent to Microsoft's APIs, by API budget and HTTP status (0: transport error)."}, []string{"api", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "socsync_remote_request_duration_seconds",
			Help: "Duration of requests to Microsoft's APIs.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"api"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "socsync_remote_throttled_total",
			Help: "Times a request was held back: by the remote (429/503 with Retry-After) or by socsync's own budget."}, []string{"api", "by"}),
	}
}

func (m *remoteMetrics) Sent(k throttle.Key, status int, took time.Duration) {
	m.sent.WithLabelValues(k.API, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(k.API).Observe(took.Seconds())
}

func (m *remoteMetrics) Throttled(k throttle.Key, _ time.Time, status int) {
	by := "remote"
	if status == 0 {
		by = "budget"
	}
	m.throttled.WithLabelValues(k.API, by).Inc()
}

func (m *remoteMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.sent.Describe(ch)
	m.duration.Describe(ch)
	m.throttled.Describe(ch)
}

func (m *remoteMetrics) Collect(ch chan<- prometheus.Metric) {
	m.sent.Collect(ch)
	m.duration.Collect(ch)
	m.throttled.Collect(ch)
}

// sourceMetrics reports each source's health from the store at scrape time: when it last
// succeeded, whether it is degraded, and its counters. One series per source: at 10,000 tenants
// that is tens of thousands of series, which Prometheus handles; drop them with relabelling if
// you do not want them.
type sourceMetrics struct {
	store *store.Store
	now   func() time.Time
	lag   *prometheus.Desc
	calls *prometheus.Desc
	thr   *prometheus.Desc
	deg   *prometheus.Desc
}

func newSourceMetrics(st *store.Store, now func() time.Time) *sourceMetrics {
	labels := []string{"tenant", "source", "kind"}
	return &sourceMetrics{store: st, now: now,
		lag:   prometheus.NewDesc("socsync_source_lag_seconds", "Time since the source's last successful poll.", labels, nil),
		calls: prometheus.NewDesc("socsync_source_calls_total", "API calls made by polls of the source.", labels, nil),
		thr:   prometheus.NewDesc("socsync_source_throttled_total", "Polls of the source that were throttled.", labels, nil),
		deg:   prometheus.NewDesc("socsync_source_degraded", "1 when the source cannot be polled until its setup is fixed (revoked consent …).", labels, nil),
	}
}

func (m *sourceMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.lag
	ch <- m.calls
	ch <- m.thr
	ch <- m.deg
}

func (m *sourceMetrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srcs, err := m.store.Sources(ctx, store.AllTenants())
	if err != nil {
		return
	}
	now := m.now()
	for _, s := range srcs {
		if !s.Enabled {
			continue
		}
		l := []string{s.TenantID, s.ID, string(s.Kind)}
		if !s.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(m.lag, prometheus.GaugeValue, now.Sub(s.LastSuccess).Seconds(), l...)
		}
		ch <- prometheus.MustNewConstMetric(m.calls, prometheus.CounterValue, float64(s.Calls), l...)
		ch <- prometheus.MustNewConstMetric(m.thr, prometheus.CounterValue, float64(s.Throttled), l...)
		deg := 0.0
		if s.Degraded != "" {
			deg = 1
		}
		ch <- prometheus.MustNewConstMetric(m.deg, prometheus.GaugeValue, deg, l...)
	}
}
