package live

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/internal/failpoint"
	"github.com/gapwatch/gapwatch/storage"
)

// Stepping and publication. Each step judges what the watermark allows,
// turns the engine's events into alerts (planned, rolled up), stores the
// alerts with the step's progress in one write and then publishes them:
// exactly once across restarts (docs/exactly-once.md).

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
		if missing, err = d.unpublished(ctx, alerts, p.AlertOffsets); err != nil {
			return err
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

// unpublished returns the alerts of a step that are to be published and
// are not on the alert topic at or after the offsets marked before the step
// was first published.
func (d *Detector) unpublished(ctx context.Context, alerts []storage.Alert, marks []int64) ([]storage.Alert, error) {
	seen, err := d.deps.Sink.Published(ctx, marks)
	if err != nil {
		return nil, fmt.Errorf("reading the alert topic: %w", err)
	}
	var missing []storage.Alert
	for _, a := range alerts {
		if !seen[a.ID] && !a.Planned && !a.Suppressed {
			missing = append(missing, a)
			seen[a.ID] = true // a step may hold a replica's copy twice
		}
	}
	return missing, nil
}

func (d *Detector) bucketOf(t int64) int64 { return bucketStart(t, d.width) }

// bucketStart is the start of the bucket of width seconds that holds t.
func bucketStart(t, width int64) int64 {
	return storage.BucketStart(time.Unix(t, 0), time.Duration(width)*time.Second)
}

// counts reads the arrival counts of the buckets starting in [from, to).
func (d *Detector) counts(ctx context.Context, from, to int64) ([]storage.Count, error) {
	sc, err := d.deps.Store.BucketCounts(ctx, storage.Arrival, time.Unix(from, 0), time.Unix(to, 0))
	if err != nil {
		return nil, err
	}
	out := make([]storage.Count, len(sc))
	for i := range sc {
		out[i] = sc[i].Count(storage.Arrival)
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
		d.metrics.setDegraded(bad)
		if bad {
			d.log.Warn("pipeline degraded: no stream is judged past the watermark", "reason", reason)
		} else {
			d.log.Info("pipeline recovered", "watermark", wm)
		}
	}
	if d.planned.silences, err = d.deps.Store.Silences(ctx); err != nil {
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
	var alerts, gaps []storage.Alert
	if to > d.judged {
		counts, err := d.counts(ctx, d.judged, to)
		if err != nil {
			return err
		}
		began := time.Now()
		res := d.engine.Advance(time.Unix(to, 0), counts)
		d.metrics.judging.WithLabelValues("advance").Observe(time.Since(began).Seconds())
		if xs := expectationsOf(res); len(xs) > 0 {
			if err := retry(ctx, d.log, "storing expectations", func(ctx context.Context) error {
				return d.deps.Store.WriteExpectations(ctx, xs)
			}); err != nil || ctx.Err() != nil {
				return ctx.Err()
			}
		}
		d.streams.judged(res, counts)
		d.metrics.streams.Set(float64(d.engine.Streams()))
		d.metrics.ignored.Add(float64(res.Ignored))
		if err := retry(ctx, d.log, "reading whether the input flows", func(ctx context.Context) (err error) {
			alerts, gaps, err = d.alertsOf(ctx, res, to)
			return err
		}); err != nil || ctx.Err() != nil {
			return ctx.Err()
		}
		d.streams.gapAlerts(gaps)
		d.follow(res.Events, gaps)
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
	began := time.Now()
	res := d.engine.Peek(at, counts)
	d.metrics.judging.WithLabelValues("peek").Observe(time.Since(began).Seconds())
	d.peeked = at.Unix()
	if len(res.Events) == 0 {
		return nil // nothing to store: a restart peeks again and finds the same
	}
	// Retried here, as in tick: the engine has opened the gaps, and a peek
	// at the same slot would not open them again.
	var alerts, gaps []storage.Alert
	if err := retry(ctx, d.log, "reading whether the input flows", func(ctx context.Context) (err error) {
		alerts, gaps, err = d.alertsOf(ctx, res, at.Unix())
		return err
	}); err != nil || ctx.Err() != nil {
		return ctx.Err()
	}
	d.streams.gapAlerts(gaps)
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
//
// The streams' statuses the step changed become visible to the API as soon
// as it is stored, before anything is published: a stream shows its gap
// from the moment the gap is on record, and whoever reads the alert topic
// finds the status agreeing.
func (d *Detector) step(ctx context.Context, alerts []storage.Alert, judged int64) error {
	ec := d.engine.Config()
	var marks []int64
	if err := retry(ctx, d.log, "storing a detection step", func(ctx context.Context) error {
		var err error
		if marks, err = d.deps.Sink.Mark(ctx); err != nil {
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
	d.streams.commit(d.view)
	if len(alerts) > 0 {
		failpoint.Hit("detect-after-store") // stored, nothing published
	}
	d.seq++
	d.judged = judged
	// A failed publication may have landed in part (a batch's messages go to
	// several partitions): a retry publishes only what is not on the topic
	// since the step's marks, as recovery after a crash does, so no event is
	// published twice.
	failed := false
	return retry(ctx, d.log, "publishing alerts", func(ctx context.Context) error {
		pending := alerts
		if failed {
			var err error
			if pending, err = d.unpublished(ctx, alerts, marks); err != nil {
				return err
			}
		}
		err := d.publish(ctx, pending)
		failed = err != nil
		return err
	})
}

// alertsOf turns a step's gap events into alerts as stored: planned ones
// marked (planned.go), those the input's own silence rolls up suppressed
// (quiet.go), with the pipeline alerts of the rollup among them; at is the
// step's time (the judged watermark, or a peek's slot). gaps[i] is
// res.Events[i]'s alert as stored. A failed read leaves the state as it was,
// for a retry.
func (d *Detector) alertsOf(ctx context.Context, res detect.Result, at int64) (alerts, gaps []storage.Alert, err error) {
	planned := maps.Clone(d.planned.planned)
	gaps = make([]storage.Alert, len(res.Events))
	for i, ev := range res.Events {
		gaps[i] = d.planned.plan(gapAlert(ev))
	}
	alerts, err = d.quiet.rollUp(ctx, res.Events, gaps, d.engine.Streams(), at)
	if err != nil {
		d.planned.planned = planned // a retry plans the same events again
		return nil, nil, err
	}
	return alerts, gaps, nil
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
