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
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/internal/failpoint"
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

// Detector is the detect role.
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
	silences   []storage.Silence        // maintenance windows, reloaded every step
	planned    map[string]bool          // open gaps inside a maintenance window
	quiet      map[string]bool          // open gaps rolled up into an input-quiet alert
	quietFrom  int64                    // since when nothing arrived, in the input-quiet episode under way (0: none; see alertsOf)
	resumedAt  int64                    // when events arrived again in it (0: still quiet)
	held       map[string]storage.Alert // gap.opened of open gaps it rolled up, published if it ends without them
	silent     map[string]int64         // open silences: their start, by gap id
	fills      map[string]*fill         // resolved gaps followed for late data, by gap id

	mu      sync.Mutex
	ready   bool
	streams map[streamKey]StreamStatus
	swept   int64 // judged time of the last forgetRetired sweep
}

type streamKey struct{ tenant, source string }

// StreamStatus is a stream's state after its last judged bucket.
type StreamStatus struct {
	Tenant, Source string
	Status         string    // ok, gap, drop, late, learning (detect.Expectation.State), planned or retired
	LastSeen       time.Time // start of the last bucket with events
	EventsPerMin   float64   // expected rate in the last judged bucket (observed while learning)
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
	return &Detector{
		cfg: cfg, deps: deps, engine: e, width: int64(ec.Bucket / time.Second),
		metrics:   newMetrics(deps.Registry),
		log:       deps.Log.With("component", "detect", "shard", ec.Shard, "shards", ec.Shards),
		streams:   map[streamKey]StreamStatus{},
		coverage:  coverage{rules: cfg.Coverage, labels: cfg.TenantLabels, missing: map[streamKey]bool{}},
		planned:   map[string]bool{},
		quiet:     map[string]bool{},
		held:      map[string]storage.Alert{},
		silent:    map[string]int64{},
		fills:     map[string]*fill{},
		stepCells: maxStepCells,
	}, nil
}

// Ready reports whether the baselines are rebuilt and live detection runs.
func (d *Detector) Ready() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ready
}

// Streams returns the status of the streams this detector judges, optionally
// of one tenant and source.
func (d *Detector) Streams(tenant, source string) []StreamStatus {
	d.mu.Lock()
	out := make([]StreamStatus, 0, len(d.streams))
	for _, s := range d.streams {
		if (tenant == "" || s.Tenant == tenant) && (source == "" || s.Source == source) {
			out = append(out, s)
		}
	}
	d.mu.Unlock()
	slices.SortFunc(out, func(a, b StreamStatus) int {
		if a.Tenant != b.Tenant {
			return cmpStr(a.Tenant, b.Tenant)
		}
		return cmpStr(a.Source, b.Source)
	})
	return out
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
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
	d.mu.Lock()
	d.ready = true
	d.mu.Unlock()
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

// recover finishes the last stored step: the alerts it stored that are not
// on the alert topic at or after the offsets taken before it was published
// are published now. Then detection resumes after that step.
func (d *Detector) recover(ctx context.Context) error {
	ec := d.engine.Config()
	p, ok, err := d.deps.Store.DetectProgress(ctx, ec.Shard, ec.Shards)
	if err != nil || !ok {
		return err
	}
	alerts, err := d.deps.Store.BatchAlerts(ctx, ec.Shard, ec.Shards, p.Seq)
	if err != nil {
		return err
	}
	var missing []storage.Alert
	if len(alerts) > 0 {
		seen, err := d.deps.Sink.Published(ctx, p.AlertOffsets)
		if err != nil {
			return fmt.Errorf("reading the alert topic: %w", err)
		}
		for _, a := range alerts {
			if !seen[a.ID] && !a.Planned && !a.Suppressed {
				missing = append(missing, a)
				seen[a.ID] = true // a step may hold a replica's copy twice
			}
		}
		if err := d.publish(ctx, missing); err != nil {
			return err
		}
	}
	// A step stored by a peek ends inside the bucket after the judged ones.
	d.seq, d.judged, d.peeked = p.Seq, d.bucketOf(p.Watermark.Unix()), p.Watermark.Unix()
	d.log.Info("resumed after the last stored step", "step", p.Seq, "watermark", p.Watermark,
		"alerts", len(alerts), "published_now", len(missing))
	return nil
}

// warmUp replays the stored history before the resume point through the
// engine, publishing nothing: the baselines and open gaps are rebuilt as live
// detection left them (up to the history window). Without a stored step,
// detection starts at the current watermark.
func (d *Detector) warmUp(ctx context.Context) error {
	for logged := false; d.seq == 0; {
		wm, unknown, err := d.watermark(ctx)
		if err != nil {
			return err
		}
		if unknown == "" {
			d.judged = d.bucketOf(wm.Unix())
			break
		}
		if !logged {
			d.log.Info("waiting for the ingest watermark", "reason", unknown)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d.cfg.Interval):
		}
	}
	end := d.judged
	from := d.bucketOf(end - int64(d.cfg.History/time.Second))
	chunk := max(d.width, 6*3600/d.width*d.width)
	start := time.Now()
	silences, err := d.deps.Store.Silences(ctx)
	if err != nil {
		return err
	}
	d.silences = silences
	first := d.seq == 0
	open := map[string]storage.Alert{} // on a first start: the gaps history leaves open
	// Replayed buckets are not stored as expectations: the streams' statuses
	// need only each step's last bucket (less than half the replay's CPU).
	d.engine.SetExpectations(detect.ExpectLast)
	defer d.engine.SetExpectations(detect.ExpectEvery)
	for t := from; t < end; {
		// Bounded like a live catch-up, at most 6 hours; until the streams
		// are known, as if there were 64 k of them. (6-hour steps of 100 k
		// streams held 36 M expectations, ~4 GB.)
		to := min(t+min(chunk, d.stepBuckets(1<<16)*d.width), end)
		counts, err := d.counts(ctx, t, to)
		if err != nil {
			return err
		}
		res := d.engine.Advance(time.Unix(to, 0), counts)
		d.replayPeak = max(d.replayPeak, d.engine.Streams()*int((to-t)/d.width))
		t = to
		d.track(res)
		alerts, err := d.alertsOf(ctx, res, to) // rebuilds which open gaps are planned or rolled up
		if err != nil {
			return err
		}
		d.follow(res.Events, alerts)
		if _, err := d.filled(ctx, to); err != nil { // rebuilds what late data filled in
			return err
		}
		for _, a := range alerts {
			switch {
			case !first || a.Planned || a.Suppressed || a.GapID == "":
			case a.Type == detect.TypeGapOpened:
				open[a.GapID] = a
			case a.Type == detect.TypeGapResolved:
				delete(open, a.GapID)
			}
		}
	}
	if len(open) > 0 {
		// Nothing was ever published for this shard: the holes that are open
		// now are news, whenever they opened.
		alerts := byTime(open)
		d.log.Info("publishing the gaps open in history", "gaps", len(alerts))
		if err := d.step(ctx, alerts, end); err != nil {
			return err
		}
	}
	if d.peeked > end {
		// The last stored step peeked into the next bucket: rebuild the
		// early silences it opened (published then).
		counts, err := d.counts(ctx, end, end+d.width)
		if err != nil {
			return err
		}
		if _, err := d.alertsOf(ctx, d.engine.Peek(time.Unix(d.peeked, 0), counts), d.peeked); err != nil {
			return err
		}
	}
	d.coverage.since = from
	if d.seq > 0 {
		d.checkCoverage(end) // holes open before the restart were reported then
	}
	d.log.Info("baselines rebuilt from history", "from", time.Unix(from, 0).UTC(), "to", time.Unix(end, 0).UTC(),
		"streams", d.engine.Streams(), "largest_step", d.replayPeak, "took", time.Since(start).Round(time.Millisecond))
	d.metrics.streams.Set(float64(d.engine.Streams()))
	return nil
}

func (d *Detector) bucketOf(t int64) int64 {
	return storage.BucketStart(time.Unix(t, 0), time.Duration(d.width)*time.Second)
}

// counts reads the arrival counts of the buckets starting in [from, to).
func (d *Detector) counts(ctx context.Context, from, to int64) ([]storage.Count, error) {
	sc, err := d.deps.Store.BucketCounts(ctx, storage.Arrival, time.Unix(from, 0), time.Unix(to, 0))
	if err != nil {
		return nil, err
	}
	out := make([]storage.Count, len(sc))
	for i := range sc {
		c := &sc[i]
		out[i] = storage.Count{Tenant: c.Tenant, Source: c.Source, Clock: storage.Arrival, Bucket: c.Bucket, Events: c.Events,
			Lateness: c.Lateness[:], Arrival: c.First} // when its first events were in: early silence (detect.Engine.Peek)
	}
	return out, nil
}

// watermark returns how far every input partition has been stored, minus
// the delay, and, when it is unknown for some partition, which one.
func (d *Detector) watermark(ctx context.Context) (time.Time, string, error) {
	parts, err := d.deps.Input.Partitions(ctx, d.cfg.Topics)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("listing input partitions: %w", err)
	}
	wm, unknown, err := storage.IngestWatermark(ctx, d.deps.Store, d.cfg.Topics, parts)
	if err != nil || unknown != "" {
		return time.Time{}, unknown, err
	}
	return wm.Add(-d.cfg.Delay), "", nil
}

// tick runs one detection step if the watermark completed a bucket, and
// watches the pipeline's health.
func (d *Detector) tick(ctx context.Context) error {
	now := d.deps.Now()
	wm, unknown, err := d.watermark(ctx)
	if err != nil {
		return err
	}
	var pipeline []storage.Alert
	lag := now.Sub(wm)
	if unknown != "" {
		// A partition without progress (new, or ingest not assigned to it)
		// holds the watermark where detection stands.
		lag = now.Sub(time.Unix(d.judged, 0))
	} else {
		d.metrics.watermark.Set(float64(wm.Unix()))
	}
	d.metrics.lag.Set(lag.Seconds())
	if bad := lag > d.cfg.MaxLag; bad != d.degraded {
		reason := unknown
		if reason == "" && bad {
			reason = fmt.Sprintf("the ingest watermark trails the clock by %s (max_lag %s)", lag.Round(time.Second), d.cfg.MaxLag)
		}
		pipeline = append(pipeline, d.degradedAlert(bad, reason, time.Unix(d.judged, 0)))
		d.degraded = bad
		d.metrics.degraded.Set(b2f(bad))
		if bad {
			d.log.Warn("pipeline degraded: no stream is judged past the watermark", "reason", reason)
		} else {
			d.log.Info("pipeline recovered", "watermark", wm)
		}
	}
	if d.silences, err = d.deps.Store.Silences(ctx); err != nil {
		return err
	}
	to := d.judged
	if unknown == "" {
		to = max(d.judged, d.bucketOf(wm.Unix()))
	}
	// After an outage, catch up in steps of bounded size (counts and
	// expectations in memory); Run goes on at once while behind.
	span := d.stepBuckets(1)
	d.behind = to > d.judged+span*d.width
	to = min(to, d.judged+span*d.width)
	var alerts []storage.Alert
	if to > d.judged {
		counts, err := d.counts(ctx, d.judged, to)
		if err != nil {
			return err
		}
		res := d.engine.Advance(time.Unix(to, 0), counts)
		if xs := expectationsOf(res); len(xs) > 0 {
			if err := retry(ctx, d.log, "storing expectations", func(ctx context.Context) error {
				return d.deps.Store.WriteExpectations(ctx, xs)
			}); err != nil || ctx.Err() != nil {
				return ctx.Err()
			}
		}
		d.track(res)
		d.metrics.streams.Set(float64(d.engine.Streams()))
		d.metrics.ignored.Add(float64(res.Ignored))
		if err := retry(ctx, d.log, "reading whether the input flows", func(ctx context.Context) (err error) {
			alerts, err = d.alertsOf(ctx, res, to)
			return err
		}); err != nil || ctx.Err() != nil {
			return ctx.Err()
		}
		d.follow(res.Events, alerts)
		var fills []storage.Alert
		if err := retry(ctx, d.log, "reading late data of resolved gaps", func(ctx context.Context) (err error) {
			fills, err = d.filled(ctx, to)
			return err
		}); err != nil || ctx.Err() != nil {
			return ctx.Err()
		}
		alerts = append(alerts, fills...)
		alerts = append(alerts, d.checkCoverage(to)...)
	}
	alerts = append(alerts, pipeline...)
	if to > d.judged || len(alerts) > 0 {
		if err := d.step(ctx, alerts, to); err != nil {
			return err
		}
	}
	if unknown == "" && !d.behind {
		if err := d.peek(ctx, wm.Unix()); err != nil {
			return err
		}
	}
	if now.Sub(d.beatAt) >= d.cfg.Heartbeat {
		beat := d.heartbeat(now, wm, lag)
		if err := d.deps.Sink.Publish(ctx, []storage.Alert{beat}); err != nil {
			d.log.Warn("publishing the heartbeat", "err", err)
		} else {
			d.beatAt = now
			d.metrics.published.WithLabelValues(beat.Type).Inc()
		}
	}
	return nil
}

// peek judges early silences in the bucket after the judged ones at its
// latest slot the watermark wm has passed (detect.Engine.Peek): a busy stream
// that stops is flagged within its first empty bucket. A peek that opens gaps
// is a step of its own, its progress the slot; a restart rebuilds it.
func (d *Detector) peek(ctx context.Context, wm int64) error {
	at, ok := d.engine.PeekSlot(time.Unix(wm, 0))
	if !ok || at.Unix() <= d.peeked {
		return nil
	}
	counts, err := d.counts(ctx, d.judged, d.judged+d.width)
	if err != nil {
		return err
	}
	res := d.engine.Peek(at, counts)
	d.peeked = at.Unix()
	if len(res.Events) == 0 {
		return nil // nothing to store: a restart peeks again and finds the same
	}
	alerts, err := d.alertsOf(ctx, res, at.Unix())
	if err != nil {
		return err
	}
	return d.step(ctx, alerts, d.judged)
}

// stepBuckets is how many buckets one Advance may judge: about stepCells
// stream-buckets (and as many counts and expectations in memory), counting
// unknown streams when none is known yet; at least one.
func (d *Detector) stepBuckets(unknown int64) int64 {
	n := int64(d.engine.Streams())
	if n == 0 {
		n = unknown
	}
	return max(1, d.stepCells/n)
}

// maxStepCells bounds the stream-buckets one tick judges: a detector catching
// up after an outage holds at most this many counts and expectations at once.
const maxStepCells = 1_000_000

// expectationsOf returns the judged buckets' expectations of the streams with
// a baseline (not learning). A restarted detector judges the buckets after its
// last stored step again and writes the same rows: readers count them once.
func expectationsOf(res detect.Result) []storage.Expectation {
	out := make([]storage.Expectation, 0, len(res.Expectations))
	for _, x := range res.Expectations {
		if x.State == "learning" {
			continue
		}
		out = append(out, storage.Expectation{Tenant: x.Tenant, Source: x.Source, Bucket: x.Bucket.Unix(),
			Expected: x.Expected, Lower: x.Lower, Upper: x.Upper, Observed: x.Observed, State: x.State})
	}
	return out
}

// step stores the alerts and the progress to judged, then publishes the
// alerts. A failure leaves the step to be finished by the next call.
func (d *Detector) step(ctx context.Context, alerts []storage.Alert, judged int64) error {
	ec := d.engine.Config()
	if err := retry(ctx, d.log, "storing a detection step", func(ctx context.Context) error {
		marks, err := d.deps.Sink.Mark(ctx)
		if err != nil {
			return fmt.Errorf("reading the alert topic's end offsets: %w", err)
		}
		progress := judged // or, for a peek, the slot inside the next bucket
		if d.peeked > judged {
			progress = d.peeked
		}
		return d.deps.Store.WriteAlerts(ctx, storage.AlertBatch{
			DetectProgress: storage.DetectProgress{Shard: ec.Shard, Shards: ec.Shards, Seq: d.seq + 1,
				Watermark: time.Unix(progress, 0).UTC(), AlertOffsets: marks},
			Alerts: alerts,
		})
	}); err != nil || ctx.Err() != nil {
		return ctx.Err()
	}
	if len(alerts) > 0 {
		failpoint.Hit("detect-after-store") // stored, nothing published
	}
	d.seq++
	d.judged = judged
	return retry(ctx, d.log, "publishing alerts", func(ctx context.Context) error { return d.publish(ctx, alerts) })
}

// alertsOf turns a step's gap events into alerts, with planned and
// rolled-up ones marked; at is the step's time (the judged watermark, or a
// peek's slot).
//
// The input itself going quiet is said once (pipeline.degraded, state
// input_quiet), not per stream, in two cases:
//   - (a) at least half of the streams (and at least 3) open a silence
//     detected at the same time, while other streams still send;
//   - (b) at least 3 streams have open silences that started together (within a
//     bucket) and nothing at all has arrived since (no arrival-clock count
//     from the bucket the silence started in on, or the next one if the
//     stream stopped inside it, up to the detection): the bus or the
//     shippers stopped. Streams at different rates are detected at
//     different times; the ones detected after that are rolled up as well.
//
// Rolled-up gaps are recorded (suppressed), not published. When anything
// arrives again in an episode of the second kind, one pipeline.degraded of
// state input_resumed says so; the gaps it rolled up that have not resolved
// resolve_after (plus a bucket) later are published then (their gap.opened,
// late), so that a rollup never hides a stream that stayed silent.
func (d *Detector) alertsOf(ctx context.Context, res detect.Result, at int64) ([]storage.Alert, error) {
	// A failed read leaves the rollup's state as it was, for a retry.
	quietFrom, resumedAt, quiet, held, silent := d.quietFrom, d.resumedAt, maps.Clone(d.quiet), maps.Clone(d.held), maps.Clone(d.silent)
	out, err := d.rollUp(ctx, res, at)
	if err != nil {
		d.quietFrom, d.resumedAt, d.quiet, d.held, d.silent = quietFrom, resumedAt, quiet, held, silent
	}
	return out, err
}

func (d *Detector) rollUp(ctx context.Context, res detect.Result, at int64) ([]storage.Alert, error) {
	var out []storage.Alert
	// Everything below is decided by event times and stored counts, not by
	// when a step runs: a replay in chunks of hours rebuilds the same state.
	resumed := func() error { // has the input come back (by at)?
		if d.quietFrom == 0 || d.resumedAt != 0 {
			return nil
		}
		first, ok, err := d.firstArrival(ctx, d.quietFrom, at)
		if err != nil || !ok {
			return err
		}
		d.resumedAt = first
		out = append(out, d.pipelineAlert(TypePipelineDegraded, time.Unix(first, 0), pipelineData{State: "input_resumed",
			Reason: fmt.Sprintf("events arrive again; of the gaps rolled up into the input-quiet alert, those that do not resolve within %s are alerted then",
				d.engine.Config().ResolveAfter),
			Watermark: time.Unix(first, 0).UTC().Format(time.RFC3339)}))
		return nil
	}
	if err := resumed(); err != nil {
		return nil, err
	}
	release := func(t int64) { // the episode's end is due at t
		if d.resumedAt != 0 && t >= d.resumedAt+int64(d.engine.Config().ResolveAfter/time.Second)+d.width {
			out = append(out, d.endQuiet()...)
		}
	}
	opened := map[int64]int{}
	for _, ev := range res.Events {
		if ev.Type == detect.TypeGapOpened && ev.Kind == detect.KindSilence {
			opened[ev.DetectedAt.Unix()]++
			d.silent[ev.GapID] = ev.StartedAt.Unix()
		}
	}
	streams := d.engine.Streams()
	need := max(3, (streams+1)/2)
	var quietAt []int64
	for t, n := range opened {
		if n >= need {
			quietAt = append(quietAt, t)
		}
	}
	slices.Sort(quietAt)
	stopped := map[[2]int64]int64{} // inputStopped's answers in this step
	rolled := map[int64]int{}       // silences rolled up by (a), by detection time
	for _, ev := range res.Events {
		release(ev.Time.Unix())
		a := d.plan(gapAlert(ev))
		if ev.Type == detect.TypeGapOpened && ev.Kind == detect.KindSilence && !a.Planned {
			start, detected := ev.StartedAt.Unix(), ev.DetectedAt.Unix()
			if d.quietFrom == 0 { // the input's own silence (b)?
				key := [2]int64{start, detected}
				if _, ok := stopped[key]; !ok {
					since, err := d.inputStopped(ctx, ev)
					if err != nil {
						return nil, err
					}
					stopped[key] = since
				}
				if since := stopped[key]; since != 0 {
					d.quietFrom = since
					d.quiet[ev.GapID], d.held[ev.GapID] = true, a
					out = append(out, d.pipelineAlert(TypePipelineDegraded, ev.DetectedAt, pipelineData{State: "input_quiet",
						Reason:    fmt.Sprintf("%d streams went silent together and nothing has arrived since %s: the input itself stopped (shippers or the bus?); their gaps are recorded, not alerted one by one", d.silentSince(start), ev.StartedAt.UTC().Format(time.RFC3339)),
						Watermark: ev.DetectedAt.UTC().Format(time.RFC3339)}))
					if err := resumed(); err != nil { // by the end of this step (a replay's chunk)
						return nil, err
					}
				}
			}
			switch {
			case d.quietFrom != 0:
				if (d.resumedAt == 0 || detected < d.resumedAt) && start >= d.quietFrom-d.width {
					d.quiet[ev.GapID], d.held[ev.GapID] = true, a
				}
			case slices.Contains(quietAt, detected): // half the streams at once (a)
				d.quiet[ev.GapID] = true
				rolled[detected]++
			}
		}
		if ev.Type == detect.TypeGapResolved {
			delete(d.silent, ev.GapID)
			delete(d.held, ev.GapID)
		}
		if d.quiet[a.GapID] {
			a.Suppressed = true
			if a.Type == detect.TypeGapResolved {
				delete(d.quiet, a.GapID)
			}
		}
		out = append(out, a)
	}
	release(at)
	for _, t := range quietAt {
		if rolled[t] == 0 { // all in an episode of (b)
			continue
		}
		at := time.Unix(t, 0)
		out = append(out, d.pipelineAlert(TypePipelineDegraded, at, pipelineData{State: "input_quiet",
			Reason:    fmt.Sprintf("%d of %d streams went silent at once: the input itself stopped (shippers or the bus?); their gaps are recorded, not alerted one by one", rolled[t], streams),
			Watermark: at.UTC().Format(time.RFC3339)}))
	}
	return out, nil
}

// inputStopped returns since when nothing has arrived, if the silence ev
// opens is the input's: at least 3 streams' silences started within a bucket
// of it and nothing has arrived since (see alertsOf); 0 if not.
func (d *Detector) inputStopped(ctx context.Context, ev detect.Event) (int64, error) {
	from := ev.StartedAt.Unix()
	if d.silentSince(from) < 3 {
		return 0, nil
	}
	if ev.Observed > 0 { // it stopped inside its first bucket: others may have sent in it too
		from += d.width
	}
	_, alive, err := d.firstArrival(ctx, from, ev.DetectedAt.Unix())
	if alive || err != nil {
		return 0, err
	}
	return from, nil
}

// silentSince counts the open silences that started at or after start, less a bucket.
func (d *Detector) silentSince(start int64) int {
	n := 0
	for _, s := range d.silent {
		if s >= start-d.width {
			n++
		}
	}
	return n
}

// firstArrival returns when the first event arrived from the bucket
// starting at from up to at, if one did: the earliest first arrival of an
// arrival-clock count of a bucket from on (counts.arrival_hw; unknown, 0,
// counts as the bucket's start). Every stream counts, this shard's or not:
// the question is whether the input flows. The same counts give the same
// answer on replay.
func (d *Detector) firstArrival(ctx context.Context, from, at int64) (int64, bool, error) {
	if at < from {
		return 0, false, nil
	}
	sc, err := d.deps.Store.BucketCounts(ctx, storage.Arrival, time.Unix(from, 0), time.Unix(d.bucketOf(at)+d.width, 0))
	if err != nil {
		return 0, false, err
	}
	first, ok := int64(0), false
	for _, c := range sc {
		t := c.First
		if t <= 0 {
			t = c.Bucket
		}
		if c.Events > 0 && t <= at && (!ok || t < first) {
			first, ok = max(t, from), true
		}
	}
	return first, ok, nil
}

// byTime returns the alerts of m in publication order: by time, then id.
func byTime(m map[string]storage.Alert) []storage.Alert {
	return slices.SortedFunc(maps.Values(m), func(a, b storage.Alert) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return cmpStr(a.ID, b.ID)
	})
}

// endQuiet ends an input-quiet episode: the gaps it rolled up that are still
// open, resolve_after past the input's return, are published now.
func (d *Detector) endQuiet() []storage.Alert {
	out := byTime(d.held)
	for _, a := range out {
		delete(d.quiet, a.GapID)
	}
	d.quietFrom, d.resumedAt, d.held = 0, 0, map[string]storage.Alert{}
	return out
}

// plan marks the alerts of a gap that started or was detected inside a
// maintenance window as planned: recorded with the gap, never published.
func (d *Detector) plan(a storage.Alert) storage.Alert {
	if a.Type == detect.TypeGapOpened {
		for _, s := range d.silences {
			if s.Covers(a.Tenant, a.Source, a.StartedAt) || s.Covers(a.Tenant, a.Source, a.DetectedAt) {
				d.planned[a.GapID] = true
				break
			}
		}
	}
	if d.planned[a.GapID] {
		a.Planned = true
		if a.Type == detect.TypeGapResolved {
			delete(d.planned, a.GapID)
		}
	}
	return a
}

func (d *Detector) publish(ctx context.Context, alerts []storage.Alert) error {
	alerts = slices.DeleteFunc(slices.Clone(alerts), func(a storage.Alert) bool { return a.Planned || a.Suppressed })
	if len(alerts) == 0 {
		return nil
	}
	if len(alerts) > 1 && failpoint.Armed("detect-mid-publish") {
		if err := d.deps.Sink.Publish(ctx, alerts[:len(alerts)/2]); err != nil {
			return err
		}
		failpoint.Hit("detect-mid-publish") // half of a step published
	}
	if err := d.deps.Sink.Publish(ctx, alerts); err != nil {
		return err
	}
	for _, a := range alerts {
		d.metrics.published.WithLabelValues(a.Type).Inc()
		if a.Type == detect.TypeGapOpened {
			d.log.Info("gap opened", "tenant", a.Tenant, "source", a.Source, "kind", a.Kind, "started_at", a.StartedAt, "gap", a.GapID)
		}
	}
	return nil
}

// track keeps every stream's status from the engine's judged buckets.
func (d *Detector) track(res detect.Result) {
	perMin := 60 / float64(d.width)
	d.mu.Lock()
	defer d.mu.Unlock()
	var judged int64 // the latest bucket start judged in this step
	for _, x := range res.Expectations {
		judged = max(judged, x.Bucket.Unix())
		k := streamKey{x.Tenant, x.Source}
		s, ok := d.streams[k]
		if !ok {
			s = StreamStatus{Tenant: x.Tenant, Source: x.Source}
		}
		s.Status = x.State
		if x.State != "ok" && x.State != "learning" {
			for _, sl := range d.silences {
				if sl.Covers(x.Tenant, x.Source, x.Bucket) {
					s.Status = "planned"
					break
				}
			}
		}
		s.EventsPerMin = x.Expected * perMin
		if x.State == "learning" {
			s.EventsPerMin = float64(x.Observed) * perMin
		}
		if x.Observed > 0 {
			s.LastSeen = x.Bucket
		}
		if !x.LastEvents.IsZero() { // a replay's summary (detect.ExpectLast)
			s.LastSeen = x.LastEvents
		}
		d.streams[k] = s
	}
	// A retired stream keeps its entry with status "retired" unless it sent
	// again later in the same step (then it is learning afresh).
	var after map[streamKey]time.Time // a stream's last judged bucket start in this step
	if len(res.Retired) > 0 {
		after = make(map[streamKey]time.Time, len(res.Retired))
		for _, x := range res.Expectations {
			after[streamKey{x.Tenant, x.Source}] = x.Bucket
		}
	}
	for _, r := range res.Retired {
		k := streamKey{r.Tenant, r.Source}
		if s, ok := d.streams[k]; ok && after[k].Before(r.At) {
			s.Status = "retired"
			s.EventsPerMin = 0
			d.streams[k] = s
		}
	}
	d.forgetRetired(judged)
}

// forgetRetired drops, once per hour of judged time, the retired streams last
// seen before the history a restart replays: the status map stays bounded by
// the streams of that window, and a restart rebuilds the same map. judged is
// the latest bucket start of the step (Unix seconds). d.mu is held.
func (d *Detector) forgetRetired(judged int64) {
	if judged < d.swept+3600 {
		return
	}
	d.swept = judged
	horizon := time.Unix(judged-int64(d.cfg.History/time.Second), 0)
	for k, s := range d.streams {
		if s.Status == "retired" && s.LastSeen.Before(horizon) {
			delete(d.streams, k)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
