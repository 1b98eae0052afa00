package live

import (
	"context"
	"time"

	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/storage"
)

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
	d.planned.silences = silences
	first := d.seq == 0
	open := map[string]storage.Alert{} // on a first start: the gaps history leaves open, as stored
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
		d.streams.judged(res, counts)
		alerts, gaps, err := d.alertsOf(ctx, res, to) // rebuilds which open gaps are planned or rolled up
		if err != nil {
			return err
		}
		d.streams.gapAlerts(gaps)
		d.follow(res.Events, gaps)
		if _, err := d.filled(ctx, to); err != nil { // rebuilds what late data filled in
			return err
		}
		for _, a := range alerts {
			switch {
			case !first || a.GapID == "":
			case a.Type == detect.TypeGapOpened:
				open[a.GapID] = a
			case a.Type == detect.TypeGapResolved:
				delete(open, a.GapID)
			}
		}
	}
	if len(open) > 0 {
		// Nothing was ever published for this shard: the holes that are open
		// now are news, whenever they opened. The planned and rolled-up ones
		// are recorded, not published, as live (their streams show them).
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
		_, gaps, err := d.alertsOf(ctx, d.engine.Peek(time.Unix(d.peeked, 0), counts), d.peeked)
		if err != nil {
			return err
		}
		d.streams.gapAlerts(gaps)
	}
	d.coverage.since = from
	if d.seq > 0 {
		d.checkCoverage(end) // holes open before the restart were reported then
	}
	d.streams.commit(d.view) // the statuses as the stored steps left them
	d.log.Info("baselines rebuilt from history", "from", time.Unix(from, 0).UTC(), "to", time.Unix(end, 0).UTC(),
		"streams", d.engine.Streams(), "largest_step", d.replayPeak, "took", time.Since(start).Round(time.Millisecond))
	d.metrics.streams.Set(float64(d.engine.Streams()))
	return nil
}
