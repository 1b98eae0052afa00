package ingest

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gapwatch/gapwatch/ingest/decode"
)

// ReasonStreamLimit refuses events of a new stream once the cardinality caps are reached.
const ReasonStreamLimit decode.Reason = "stream_limit"

// ReasonTimeOutOfRange refuses events whose time is too far from their arrival
// (beyond Config.MaxFuture ahead or Config.MaxLateness behind).
const ReasonTimeOutOfRange decode.Reason = "time_out_of_range"

// allReasons are pre-registered so every rejection series exists from the start.
var allReasons = []decode.Reason{
	decode.ReasonOversized, decode.ReasonInvalidUTF8, decode.ReasonInvalidJSON, decode.ReasonNotObject, decode.ReasonEmptyEnvelope,
	decode.ReasonMissingTenant, decode.ReasonMissingSource, decode.ReasonMissingTime, decode.ReasonBadTime, decode.ReasonBadTenant,
	decode.ReasonBadSource, ReasonStreamLimit, ReasonTimeOutOfRange,
}

// Metrics are ingest's Prometheus series.
type Metrics struct {
	messages      prometheus.Counter
	eventsStored  prometheus.Counter
	rejected      *prometheus.CounterVec
	flushes       prometheus.Counter
	flushErrors   prometheus.Counter
	flushSeconds  prometheus.Histogram
	flushRows     prometheus.Histogram
	pending       prometheus.Gauge
	partitions    prometheus.Gauge
	streams       prometheus.GaugeFunc
	capUsed       prometheus.GaugeFunc
	tenantsAtCap  prometheus.GaugeFunc
	commitErrors  prometheus.Counter
	storedOffsets *prometheus.GaugeVec
	deadLetters   prometheus.Counter
	dlqErrors     prometheus.Counter
	watermark     *prometheus.GaugeVec
	lostRecords   *prometheus.CounterVec

	deadLettersDropped prometheus.Counter // letters given up on when the dead-letter topic failed
	abortedRecords     *prometheus.CounterVec

	capAlerts           *prometheus.CounterVec // by state
	capAlertErrors      prometheus.Counter
	capAlertsDropped    prometheus.Counter
	capAlertsSuppressed prometheus.Counter
}

// NewMetrics registers ingest's metrics on reg.
func NewMetrics(reg prometheus.Registerer, streams *Streams) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounter(prometheus.CounterOpts{Name: "gapwatch_ingest_messages_total",
			Help: "Kafka messages consumed."}),
		eventsStored: prometheus.NewCounter(prometheus.CounterOpts{Name: "gapwatch_ingest_events_stored_total",
			Help: "Events counted and durably stored."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gapwatch_ingest_rejected_total",
			Help: "Messages or records that could not be counted, by reason."}, []string{"reason"}),
		flushes: prometheus.NewCounter(prometheus.CounterOpts{Name: "gapwatch_ingest_flushes_total",
			Help: "Batches written to the store."}),
		flushErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "gapwatch_ingest_flush_errors_total",
			Help: "Failed batch writes (retried)."}),
		flushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gapwatch_ingest_flush_duration_seconds",
			Help: "Time to write one batch.", Buckets: prometheus.ExponentialBuckets(0.002, 2, 14)}),
		flushRows: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gapwatch_ingest_flush_rows",
			Help: "Rows per batch written.", Buckets: prometheus.ExponentialBuckets(1, 4, 12)}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gapwatch_ingest_pending_cells",
			Help: "Counts held in memory waiting for the next write."}),
		partitions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gapwatch_ingest_partitions_assigned",
			Help: "Kafka partitions this process consumes."}),
		streams: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gapwatch_ingest_streams",
			Help: "Distinct (tenant, source) streams admitted."}, func() float64 { return float64(streams.Len()) }),
		capUsed: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gapwatch_ingest_stream_cap_used_ratio",
			Help: "Admitted streams over limits.max_streams: at 1 new streams are refused (stream_limit); alert well before."},
			func() float64 { u, _, _ := streams.CapPressure(); return u }),
		tenantsAtCap: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gapwatch_ingest_tenants_at_stream_cap",
			Help: "Tenants refused a new stream by a cap (max_streams_per_tenant, or max_streams less the priority tenants' reserve) since they last got one."},
			func() float64 { _, n, _ := streams.CapPressure(); return float64(n) }),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "gapwatch_ingest_commit_errors_total",
			Help: "Failed Kafka offset commits (progress is kept in the store; harmless but worth a look)."}),
		storedOffsets: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gapwatch_ingest_stored_offset",
			Help: "Next offset to consume, as durably stored, per partition."}, []string{"topic", "partition"}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{Name: "gapwatch_ingest_dead_letters_total",
			Help: "Messages with rejected input published to <topic>.dlq."}),
		watermark: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gapwatch_ingest_arrival_watermark_seconds",
			Help: "Arrival watermark per partition as stored (Unix seconds): the highest record timestamp, or the wall clock while caught up and idle."}, []string{"topic", "partition"}),
		lostRecords: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gapwatch_ingest_lost_records_total",
			Help: "Records Kafka retention deleted before ingest counted them (ingest was down or too slow for longer than the topic's retention)."}, []string{"topic"}),
		dlqErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "gapwatch_ingest_dead_letter_errors_total",
			Help: "Failed dead-letter publications (their letters are dropped: counting does not wait for the dead-letter topic)."}),
		deadLettersDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "gapwatch_ingest_dead_letters_dropped_total",
			Help: "Dead letters dropped because the dead-letter topic failed (their rejections are counted in gapwatch_ingest_rejected_total)."}),
		abortedRecords: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gapwatch_ingest_aborted_records_total",
			Help: "Records of aborted Kafka transactions skipped (ingest reads committed records only)."}, []string{"topic"}),
		capAlerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gapwatch_ingest_cap_alerts_total",
			Help: "Stream cap alerts (io.gapwatch.pipeline.degraded) published to the alert topic, by state (stream_cap, stream_cap_cleared)."}, []string{"state"}),
		capAlertErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "gapwatch_ingest_cap_alert_errors_total",
			Help: "Failed publications of stream cap alerts (retried, then dropped: counting does not wait for the alert topic)."}),
		capAlertsDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "gapwatch_ingest_cap_alerts_dropped_total",
			Help: "Stream cap alerts given up on because the alert topic failed."}),
		capAlertsSuppressed: prometheus.NewCounter(prometheus.CounterOpts{Name: "gapwatch_ingest_cap_alerts_suppressed_total",
			Help: "Stream cap events that made no alert of their own (rate limit: one per tenant, cap and state an hour; a bounded number of tenants)."}),
	}
	reg.MustRegister(m.capAlerts, m.capAlertErrors, m.capAlertsDropped, m.capAlertsSuppressed,
		m.messages, m.eventsStored, m.rejected, m.flushes, m.flushErrors, m.flushSeconds,
		m.flushRows, m.pending, m.partitions, m.streams, m.capUsed, m.tenantsAtCap, m.commitErrors, m.storedOffsets, m.deadLetters, m.dlqErrors, m.watermark, m.lostRecords, m.deadLettersDropped, m.abortedRecords)
	for _, r := range allReasons {
		m.rejected.WithLabelValues(string(r))
	}
	for _, st := range []string{StateStreamCap, StateStreamCapCleared} {
		m.capAlerts.WithLabelValues(st)
	}
	return m
}
