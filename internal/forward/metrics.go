package forward

import "github.com/prometheus/client_golang/prometheus"

// metrics are the forward stream's Prometheus series. None carries a tenant or incident label.
type metrics struct {
	rows        *prometheus.CounterVec
	batches     prometheus.Counter
	requests    *prometheus.CounterVec
	bytes       *prometheus.CounterVec
	batchBytes  *prometheus.HistogramVec
	splits      *prometheus.CounterVec
	truncated   prometheus.Counter
	clamped     prometheus.Counter
	lag         prometheus.Histogram
	pending     prometheus.Gauge
	oldest      prometheus.Gauge
	deadLetters prometheus.Gauge
}

func newMetrics() *metrics {
	return &metrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "socsync_forward_rows_total",
			Help: "Outbox rows settled: sent (204) or failed (set aside as dead letters)."}, []string{"result"}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{Name: "socsync_forward_batches_total",
			Help: "Batches Logs Ingestion took (204)."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "socsync_forward_requests_total",
			Help: "Upload attempts by outcome: ok, throttled, too_large (413), rejected (400), refused (401/403/404), error (5xx, transport, timeout)."},
			[]string{"outcome"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "socsync_forward_bytes_total",
			Help: "Bytes of batches taken, as JSON and as sent (gzip)."}, []string{"encoding"}),
		batchBytes: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "socsync_forward_batch_bytes",
			Help: "Size of batches taken, as JSON and as sent (gzip).", Buckets: prometheus.ExponentialBuckets(1024, 2, 11)}, []string{"encoding"}),
		splits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "socsync_forward_splits_total",
			Help: "Batches split in halves after a 413 (too large) or a 400 (to find the refused rows)."}, []string{"status"}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{Name: "socsync_forward_truncated_rows_total",
			Help: "Rows sent with values cut to fit the field or request limits (their TruncatedFields says which)."}),
		clamped: prometheus.NewCounter(prometheus.CounterOpts{Name: "socsync_forward_clamped_rows_total",
			Help: "Rows built with TimeGenerated moved into the ingestion window (TimeClamped)."}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "socsync_forward_lag_seconds",
			Help: "From a hub change's commit to Logs Ingestion taking its row.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 15)}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "socsync_forward_pending_rows",
			Help: "Outbox rows not sent yet."}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{Name: "socsync_forward_oldest_pending_seconds",
			Help: "Age of the oldest outbox row not sent yet (0 when none)."}),
		deadLetters: prometheus.NewGauge(prometheus.GaugeOpts{Name: "socsync_forward_dead_letters",
			Help: "Outbox rows Logs Ingestion refused on their own, set aside (store.OutboxFailures)."}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.rows, m.batches, m.requests, m.bytes, m.batchBytes, m.splits, m.truncated, m.clamped,
		m.lag, m.pending, m.oldest, m.deadLetters}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}
