package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/gapwatch/gapwatch/ingest/decode"
	"github.com/gapwatch/gapwatch/storage"
)

// Sink is where ingest stores its batches: the ClickHouse store in production,
// the in-memory store in the demo.
type Sink interface {
	// Write stores the batch's counts and offsets atomically: all of it or none.
	// An error may still mean it was stored (a timeout after the server committed);
	// ingest tells the two apart by reading Offsets back. Each lane's flusher
	// writes its own batches (of its own partitions), concurrently with the others.
	Write(ctx context.Context, b storage.Batch) error
	// Offsets returns the stored progress of every partition of topic.
	Offsets(ctx context.Context, topic string) (map[int32]storage.Offset, error)
}

// Config is the ingest role's configuration. Zero values take the documented defaults.
type Config struct {
	Brokers       []string                      `yaml:"brokers"`        // default 127.0.0.1:9092
	Topics        []string                      `yaml:"topics"`         // raw log topics; default logs
	Group         string                        `yaml:"group"`          // consumer group; default gapwatch-ingest
	Bucket        time.Duration                 `yaml:"bucket"`         // count bucket width; default 1m
	FlushInterval time.Duration                 `yaml:"flush_interval"` // how often counts are written; default 1s
	Fields        decode.FieldConfig            `yaml:"fields"`         // field resolution for every topic
	TopicFields   map[string]decode.FieldConfig `yaml:"topic_fields"`   // per-topic field resolution, replacing Fields
	Limits        Limits                        `yaml:"limits"`
	MaxFuture     time.Duration                 `yaml:"max_future"`      // events stamped further ahead of their arrival are rejected; default 1h
	MaxLateness   time.Duration                 `yaml:"max_lateness"`    // events older than this at arrival are rejected; default 168h
	StartOffset   string                        `yaml:"start_offset"`    // where a partition with no stored or committed progress starts: earliest (default) or latest
	FetchMaxBytes int                           `yaml:"fetch_max_bytes"` // per partition fetch; default 8 MiB
	FetchMaxWait  time.Duration                 `yaml:"fetch_max_wait"`  // default 250ms
	WriteTimeout  time.Duration                 `yaml:"write_timeout"`   // one store write; default 20s; twice it must stay below the rebalance timeout
	// RebalanceTimeout bounds how long a member may take to hand its partitions over
	// (final write included); default 60s.
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout"`
	SessionTimeout   time.Duration `yaml:"session_timeout"` // default 10s
	// IdleAfter is how long a partition may deliver nothing before ingest checks
	// whether it is caught up; a caught-up partition's arrival watermark then
	// advances with ingest's clock, so an idle partition (or one that never had
	// a record) does not hold detection back. Default 5s.
	IdleAfter time.Duration `yaml:"idle_after"`
	// IdleMargin is how far an idle partition's arrival watermark stays behind
	// ingest's clock when it last found the partition caught up. Arrival times
	// are record timestamps — the broker's clock (LogAppendTime) or the
	// producer's (CreateTime) — so the margin must cover the skew between that
	// clock and ingest's, plus how long a record can take from its timestamp
	// to being readable (producer batching and retries, replication): a record
	// readable only later must not arrive before the watermark by more than
	// detect.delay. Default 2s; at most 10m.
	IdleMargin time.Duration `yaml:"idle_margin"`
	// TopicWatchInterval is how often ingest asks Kafka which input topics
	// exist and with how many partitions; when that changes (a topic created
	// after ingest started, partitions added) it joins the consumer group
	// again with them. Ingest never creates an input topic. Default 5s.
	TopicWatchInterval time.Duration `yaml:"topic_watch_interval"`
}

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if len(c.Brokers) == 0 {
		c.Brokers = []string{"127.0.0.1:9092"}
	}
	if len(c.Topics) == 0 {
		c.Topics = []string{"logs"}
	}
	if c.Group == "" {
		c.Group = "gapwatch-ingest"
	}
	if c.Bucket == 0 {
		c.Bucket = time.Minute
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = time.Second
	}
	c.Fields = c.Fields.WithDefaults()
	for t, f := range c.TopicFields {
		c.TopicFields[t] = f.WithDefaults()
	}
	c.Limits = c.Limits.WithDefaults()
	if c.MaxFuture == 0 {
		c.MaxFuture = time.Hour
	}
	if c.MaxLateness == 0 {
		c.MaxLateness = 7 * 24 * time.Hour
	}
	if c.StartOffset == "" {
		c.StartOffset = "earliest"
	}
	if c.FetchMaxBytes == 0 {
		c.FetchMaxBytes = 8 << 20
	}
	if c.FetchMaxWait == 0 {
		c.FetchMaxWait = 250 * time.Millisecond
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 20 * time.Second
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = 60 * time.Second
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.IdleAfter == 0 {
		c.IdleAfter = 5 * time.Second
	}
	if c.IdleMargin == 0 {
		c.IdleMargin = 2 * time.Second
	}
	if c.TopicWatchInterval == 0 {
		c.TopicWatchInterval = 5 * time.Second
	}
	return c
}

// maxIdleMargin bounds IdleMargin: beyond it, record timestamps are too far
// from any clock for an idle partition's watermark to mean anything.
const maxIdleMargin = 10 * time.Minute

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	switch {
	case len(c.Brokers) == 0 || c.Brokers[0] == "":
		return errors.New("ingest: no Kafka brokers")
	case len(c.Topics) == 0:
		return errors.New("ingest: no input topics")
	case c.Group == "":
		return errors.New("ingest: empty consumer group")
	case c.Bucket < time.Second || c.Bucket%time.Second != 0 || (24*time.Hour)%c.Bucket != 0:
		return fmt.Errorf("ingest: bucket %s must be whole seconds and divide a day", c.Bucket)
	case c.FlushInterval < 10*time.Millisecond:
		return fmt.Errorf("ingest: flush_interval %s too short", c.FlushInterval)
	case c.FetchMaxBytes < 1 || c.FetchMaxWait < time.Millisecond:
		return fmt.Errorf("ingest: fetch_max_bytes %d and fetch_max_wait %s must be positive (wait at least 1ms)", c.FetchMaxBytes, c.FetchMaxWait)
	case c.IdleAfter < c.FetchMaxWait:
		return fmt.Errorf("ingest: idle_after %s must be at least fetch_max_wait %s", c.IdleAfter, c.FetchMaxWait)
	case c.IdleMargin < 0 || c.IdleMargin > maxIdleMargin:
		return fmt.Errorf("ingest: idle_margin %s must be in [0, %s]", c.IdleMargin, maxIdleMargin)
	case c.TopicWatchInterval < 100*time.Millisecond:
		return fmt.Errorf("ingest: topic_watch_interval %s too short (at least 100ms)", c.TopicWatchInterval)
	case c.StartOffset != "earliest" && c.StartOffset != "latest":
		return fmt.Errorf("ingest: start_offset %q: want earliest or latest", c.StartOffset)
	case 2*c.WriteTimeout >= c.RebalanceTimeout:
		return fmt.Errorf("ingest: twice write_timeout %s must be below rebalance_timeout %s, or a slow final write could overlap the next owner", c.WriteTimeout, c.RebalanceTimeout)
	case c.Limits.ReservedStreams < 0 || c.Limits.ReservedStreams >= c.Limits.MaxStreams:
		return fmt.Errorf("ingest: limits: reserved_streams must be in [0, max_streams), got %d", c.Limits.ReservedStreams)
	case c.Limits.MaxStreams < 1 || c.Limits.MaxStreamsPerTenant < 1 || c.Limits.MaxPendingCells < 2:
		return errors.New("ingest: limits must be positive")
	}
	if err := c.Fields.Validate(); err != nil {
		return err
	}
	for t, f := range c.TopicFields {
		if err := f.Validate(); err != nil {
			return fmt.Errorf("topic %s: %w", t, err)
		}
	}
	return nil
}

func (c Config) fieldsFor(topic string) decode.FieldConfig {
	if f, ok := c.TopicFields[topic]; ok {
		return f
	}
	return c.Fields
}

// Limits bound what one ingest process holds in memory, whatever the input.
type Limits struct {
	MaxStreams          int `yaml:"max_streams"`            // distinct (tenant, source) streams counted; default 100000
	MaxStreamsPerTenant int `yaml:"max_streams_per_tenant"` // default 10000
	MaxPendingCells     int `yaml:"max_pending_cells"`      // counts held between flushes before consumers wait; default 500000
	MaxPendingDLQBytes  int `yaml:"max_pending_dlq_bytes"`  // dead letters held between flushes before consumers wait; default 32 MiB
	// StreamIdle is how long (in arrival time) a stream may send nothing and still
	// count towards the caps; idle streams are forgotten when the caps are reached. Default 1h.
	StreamIdle time.Duration `yaml:"stream_idle"`
	// PriorityTenants are admitted first: tenant names come from log content,
	// so a forger can make up streams until max_streams is reached. While any
	// are named, other tenants' streams may fill max_streams less ReservedStreams;
	// the rest stays for these. `gapwatch run` names the tenants of detect.coverage
	// and detect.tenant_labels here unless set. Default none.
	PriorityTenants []string `yaml:"priority_tenants"`
	// ReservedStreams is the room kept for PriorityTenants; default a tenth of
	// max_streams when any are named, else 0.
	ReservedStreams int `yaml:"reserved_streams"`
}

// WithDefaults fills unset limits.
func (l Limits) WithDefaults() Limits {
	if l.MaxStreams == 0 {
		l.MaxStreams = 100_000
	}
	if l.MaxStreamsPerTenant == 0 {
		l.MaxStreamsPerTenant = 10_000
	}
	if l.MaxPendingCells == 0 {
		l.MaxPendingCells = 500_000
	}
	if l.MaxPendingDLQBytes == 0 {
		l.MaxPendingDLQBytes = 32 << 20
	}
	if l.StreamIdle == 0 {
		l.StreamIdle = time.Hour
	}
	if l.ReservedStreams == 0 && len(l.PriorityTenants) > 0 {
		l.ReservedStreams = l.MaxStreams / 10
	}
	return l
}

// Deps are what an Ingester works with.
type Deps struct {
	Sink     Sink
	Registry prometheus.Registerer
	Log      *slog.Logger
	// Dialer connects to Kafka (consumer group, fetches, offset lookups); nil means kafka-go's default dialer.
	Dialer *kafka.Dialer
	// Transport carries the dead letters; nil: one with the Dialer's TLS and SASL.
	Transport kafka.RoundTripper
	// DeadLetters receives what could not be counted; nil means <topic>.dlq on the input cluster.
	DeadLetters DeadLetterPublisher
	// Alerts receives the stream caps' alerts (see capalert.go); nil means
	// AlertsTopic on the input cluster, through Transport.
	Alerts AlertPublisher
	// AlertsTopic is the alert topic (config's alerts_topic); default gapwatch.alerts.
	AlertsTopic string
}

// AlertPublisher publishes alerts to the alert topic; Publish returns once
// they are acknowledged, or an error. *live.Kafka is one.
type AlertPublisher interface {
	Publish(ctx context.Context, alerts []storage.Alert) error
}
