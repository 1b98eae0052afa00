package live

import "github.com/prometheus/client_golang/prometheus"

// metrics are the detect role's metrics.
type metrics struct {
	streams, watermark, lag, degraded prometheus.Gauge
	ignored                           prometheus.Counter
	published                         *prometheus.CounterVec
	judging                           *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		streams:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "gapwatch_detect_streams", Help: "Streams the detector judges."}),
		watermark: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gapwatch_detect_watermark_seconds", Help: "The ingest watermark detection follows (Unix seconds)."}),
		lag:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "gapwatch_detect_lag_seconds", Help: "How far the watermark trails the wall clock."}),
		degraded:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "gapwatch_detect_degraded", Help: "1 while the pipeline is degraded (no stream is judged)."}),
		ignored:   prometheus.NewCounter(prometheus.CounterOpts{Name: "gapwatch_detect_late_counts_total", Help: "Counts that arrived for buckets already judged."}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gapwatch_alerts_published_total", Help: "Alerts published, by CloudEvents type."}, []string{"type"}),
		judging: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gapwatch_detect_judge_seconds",
			Help:    "Wall time the engine takes to judge a step's buckets (op advance: one bucket when keeping up, many in a catch-up after an outage) or a peek's slot (op peek), all streams; keeping up, compare with the bucket width.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9)}, []string{"op"}),
	}
	if reg != nil {
		reg.MustRegister(m.streams, m.watermark, m.lag, m.degraded, m.ignored, m.published, m.judging)
	}
	return m
}

// setDegraded records whether the pipeline is degraded.
func (m *metrics) setDegraded(bad bool) {
	v := 0.0
	if bad {
		v = 1
	}
	m.degraded.Set(v)
}
