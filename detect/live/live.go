// Package live runs detection on the live pipeline (role detect): it follows
// the ingest watermark in the store, feeds each complete bucket's counts to a
// detect.Engine, stores every step's alerts with its progress atomically and
// publishes them to the alert topic exactly once across restarts (see
// docs/exactly-once.md). It also watches the pipeline itself: a stalled
// watermark is one pipeline.degraded alert, not a storm of per-stream gaps, and
// a heartbeat proves the watcher alive.
package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/storage"
)

// Store is what detection reads and writes.
type Store interface {
	Offsets(ctx context.Context, topic string) (map[int32]storage.Offset, error)
	BucketCounts(ctx context.Context, clock storage.Clock, from, to time.Time) ([]storage.StreamCount, error)
	WriteAlerts(ctx context.Context, b storage.AlertBatch) error
	DetectProgress(ctx context.Context, shard, shards int) (storage.DetectProgress, bool, error)
	BatchAlerts(ctx context.Context, shard, shards int, seq uint64) ([]storage.Alert, error)
	Silences(ctx context.Context) ([]storage.Silence, error)
	// WriteExpectations records what was expected of each stream in the
	// judged buckets: the band of the rates API and the coverage API.
	WriteExpectations(ctx context.Context, xs []storage.Expectation) error
	// Arrived reads the late event-clock counts of resolved gaps (fill.go).
	Arrived(ctx context.Context, q storage.ArrivedQuery) ([]storage.Arrived, error)
}

// Sink is the alert topic.
type Sink interface {
	// Mark returns the topic's end offsets by partition.
	Mark(ctx context.Context) ([]int64, error)
	// Published returns the ids of the alerts at or after the offsets from.
	Published(ctx context.Context, from []int64) (map[string]bool, error)
	// Publish writes alerts in order and returns once all are acknowledged.
	Publish(ctx context.Context, alerts []storage.Alert) error
}

// Input reports the partitions of the input topics, whose stored progress
// makes the watermark.
type Input interface {
	Partitions(ctx context.Context, topics []string) (map[string][]int32, error)
}

// Config configures the detect role.
type Config struct {
	Engine detect.Config
	Topics []string // input topics
	// Interval is how often the watermark is checked. Default 1s.
	Interval time.Duration
	// Delay holds judgement this long behind the watermark, for records whose
	// timestamps are slightly out of order within a partition. Default 1s.
	Delay time.Duration
	// History is how much stored history rebuilds the baselines at start-up.
	// Default 15 days (two weekly seasons and a day).
	History time.Duration
	// MaxLag is how far the watermark may trail the wall clock before the
	// pipeline is degraded. Default 5m.
	MaxLag time.Duration
	// Heartbeat is the period of pipeline.heartbeat. Default 1m.
	Heartbeat time.Duration
	// Coverage is the policy of required sources.
	Coverage []CoverageRule
	// TenantLabels gives tenants labels that coverage rules can select them by.
	TenantLabels map[string][]string
	// FillWindow is how long after a silence or drop resolved late data of
	// its period still updates it (fill.go). Default 24h; negative: never.
	FillWindow time.Duration
}

func (c Config) withDefaults() Config {
	if c.Interval == 0 {
		c.Interval = time.Second
	}
	if c.Delay == 0 {
		c.Delay = time.Second
	}
	if c.History == 0 {
		c.History = 15 * 24 * time.Hour
	}
	if c.MaxLag == 0 {
		c.MaxLag = 5 * time.Minute
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = time.Minute
	}
	if c.FillWindow == 0 {
		c.FillWindow = 24 * time.Hour
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	c = c.withDefaults()
	if err := c.Engine.Validate(); err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	switch {
	case len(c.Topics) == 0:
		return errors.New("detect: no input topics")
	case c.Interval < 100*time.Millisecond:
		return fmt.Errorf("detect: interval must be at least 100ms, got %s", c.Interval)
	case c.Delay < 0:
		return fmt.Errorf("detect: delay must not be negative, got %s", c.Delay)
	case c.History < 0:
		return fmt.Errorf("detect: history must not be negative, got %s", c.History)
	case c.MaxLag < c.Interval:
		return fmt.Errorf("detect: max_lag %s must be at least the interval %s", c.MaxLag, c.Interval)
	case c.Heartbeat < time.Second:
		return fmt.Errorf("detect: heartbeat must be at least 1s, got %s", c.Heartbeat)
	}
	for tenant, labels := range c.TenantLabels {
		if tenant == "" || slices.Contains(labels, "") {
			return errors.New("detect: tenant_labels must not name an empty tenant or label")
		}
	}
	return ValidateCoverage(c.Coverage)
}

// Deps are the detector's collaborators.
type Deps struct {
	Store    Store
	Sink     Sink
	Input    Input
	Registry prometheus.Registerer
	Log      *slog.Logger
	Now      func() time.Time // the wall clock, for lag and heartbeats only
}

// Detector is the detect role. Its parts, each with one job:
//   - step.go: stepping and publication (tick, peek, step, recover);
//   - warm.go: the warm start, replaying stored history through the engine;
//   - quiet.go and planned.go: the input-quiet rollup and maintenance
//     windows, which decide how a step's gaps are published;
//   - status.go: the streams' statuses (from the engine's judged buckets and
//     the stored gaps, retired streams included) and the view of them the
//     API reads, which changes when a step is stored;
//   - coverage.go, fill.go: required sources and late data of resolved gaps;
//   - alerts.go, metrics.go: the pipeline's own alerts and the metrics.
//
// Everything but the status view is owned by Run's goroutine.
type Detector struct {
	cfg     Config
	deps    Deps
	engine  *detect.Engine
	width   int64
	metrics *metrics
	log     *slog.Logger

	seq        uint64 // last stored step
	behind     bool   // the last tick judged less than the watermark allowed (catching up)
	stepCells  int64  // maxStepCells, smaller in tests
	replayPeak int    // the most stream-buckets one step of the start-up replay judged
	judged     int64  // every bucket ending at or before this is judged (Unix seconds)
	peeked     int64  // the bucket after judged is judged for early silences up to here (peek)
	degraded   bool   // a pipeline.degraded is outstanding
	beatAt     time.Time
	coverage   coverage
	planned    maintenance      // maintenance windows and the gaps they plan
	quiet      *quietRollup     // input-quiet episodes
	fills      map[string]*fill // resolved gaps followed for late data, by gap id
	streams    *statusTable     // the streams' statuses, as judged
	view       *statusView      // the statuses the API reads
}

// New returns a detector.
func New(cfg Config, deps Deps) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.Engine.Clock = storage.Arrival
	cfg.Engine.Expectations = true
	e, err := detect.New(cfg.Engine)
	if err != nil {
		return nil, fmt.Errorf("detect: %w", err)
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	ec := e.Config()
	width := int64(ec.Bucket / time.Second)
	d := &Detector{
		cfg: cfg, deps: deps, engine: e, width: width,
		metrics:   newMetrics(deps.Registry),
		log:       deps.Log.With("component", "detect", "shard", ec.Shard, "shards", ec.Shards),
		coverage:  coverage{rules: cfg.Coverage, labels: cfg.TenantLabels, missing: map[streamKey]bool{}},
		planned:   maintenance{planned: map[string]bool{}},
		fills:     map[string]*fill{},
		streams:   newStatusTable(width, cfg.History),
		view:      newStatusView(),
		stepCells: maxStepCells,
	}
	d.quiet = newQuietRollup(width, ec.ResolveAfter, deps.Store, d.pipelineAlert)
	return d, nil
}

// Ready reports whether the baselines are rebuilt and live detection runs.
func (d *Detector) Ready() bool { return d.view.isReady() }

// Streams returns the status of the streams this detector judges, optionally
// of one tenant and source, sorted by tenant and source.
func (d *Detector) Streams(tenant, source string) []StreamStatus {
	return d.view.list(tenant, source)
}

// Run recovers, rebuilds the baselines from history and then detects until
// ctx ends. Store and Kafka errors are retried with backoff, never skipped:
// a step is stored and published completely before the next one.
func (d *Detector) Run(ctx context.Context) error {
	if t, ok := d.deps.Sink.(interface{ EnsureTopic(context.Context) error }); ok {
		if err := retry(ctx, d.log, "creating the alert topic", t.EnsureTopic); err != nil {
			return err
		}
	}
	if err := retry(ctx, d.log, "recovering the last step", d.recover); err != nil {
		return err
	}
	if err := retry(ctx, d.log, "rebuilding baselines", d.warmUp); err != nil {
		return err
	}
	d.view.setReady()
	d.log.Info("detecting", "from", time.Unix(d.judged, 0).UTC(), "streams", d.engine.Streams())
	tick := time.NewTicker(d.cfg.Interval)
	defer tick.Stop()
	for {
		if err := retry(ctx, d.log, "detection step", d.tick); err != nil {
			return err
		}
		if d.behind && ctx.Err() == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// retry runs fn until it succeeds or ctx ends, backing off up to 30s.
func retry(ctx context.Context, log *slog.Logger, what string, fn func(context.Context) error) error {
	for wait := 500 * time.Millisecond; ; wait = min(2*wait, 30*time.Second) {
		err := fn(ctx)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		log.Warn(what+" failed; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait + rand.N(wait/4)):
		}
	}
}
