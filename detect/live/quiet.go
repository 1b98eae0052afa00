package live

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/storage"
)

// quietRollup says the input itself going quiet once (pipeline.degraded,
// state input_quiet), not per stream, in two cases:
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
//
// Everything it decides follows from event times and stored counts, not from
// when a step runs: a replay in chunks of hours rebuilds the same state.
type quietRollup struct {
	width        int64 // bucket width, seconds
	resolveAfter time.Duration
	counts       bucketCounter
	alert        func(typ string, at time.Time, data pipelineData) storage.Alert // a pipeline alert

	from      int64                    // since when nothing arrived, in the episode under way (0: none)
	resumedAt int64                    // when events arrived again in it (0: still quiet)
	quiet     map[string]bool          // open gaps rolled up, by gap id
	held      map[string]storage.Alert // gap.opened of open gaps it rolled up, published if it ends without them
	silent    map[string]int64         // open silences: their start, by gap id
}

// bucketCounter reads stored counts (Store.BucketCounts).
type bucketCounter interface {
	BucketCounts(ctx context.Context, clock storage.Clock, from, to time.Time) ([]storage.StreamCount, error)
}

func newQuietRollup(width int64, resolveAfter time.Duration, counts bucketCounter,
	alert func(typ string, at time.Time, data pipelineData) storage.Alert) *quietRollup {
	return &quietRollup{width: width, resolveAfter: resolveAfter, counts: counts, alert: alert,
		quiet: map[string]bool{}, held: map[string]storage.Alert{}, silent: map[string]int64{}}
}

// rollUp returns a step's alerts as stored: the gaps' alerts (gaps[i] is
// events[i]'s, planned or not), those it rolls up marked suppressed (in gaps
// too), with the episodes' pipeline alerts and released gaps among them.
// streams is the number of streams judged; at the step's time (the judged
// watermark, or a peek's slot). A failed read leaves the state as it was,
// for a retry.
func (q *quietRollup) rollUp(ctx context.Context, events []detect.Event, gaps []storage.Alert, streams int, at int64) ([]storage.Alert, error) {
	from, resumedAt, quiet, held, silent := q.from, q.resumedAt, maps.Clone(q.quiet), maps.Clone(q.held), maps.Clone(q.silent)
	out, err := q.roll(ctx, events, gaps, streams, at)
	if err != nil {
		q.from, q.resumedAt, q.quiet, q.held, q.silent = from, resumedAt, quiet, held, silent
	}
	return out, err
}

func (q *quietRollup) roll(ctx context.Context, events []detect.Event, gaps []storage.Alert, streams int, at int64) ([]storage.Alert, error) {
	var out []storage.Alert
	resumed := func() error { // has the input come back (by at)?
		if q.from == 0 || q.resumedAt != 0 {
			return nil
		}
		first, ok, err := q.firstArrival(ctx, q.from, at)
		if err != nil || !ok {
			return err
		}
		q.resumedAt = first
		out = append(out, q.alert(TypePipelineDegraded, time.Unix(first, 0), pipelineData{State: "input_resumed",
			Reason: fmt.Sprintf("events arrive again; of the gaps rolled up into the input-quiet alert, those that do not resolve within %s are alerted then",
				q.resolveAfter),
			Watermark: time.Unix(first, 0).UTC().Format(time.RFC3339)}))
		return nil
	}
	if err := resumed(); err != nil {
		return nil, err
	}
	release := func(t int64) { // the episode's end is due at t
		if q.resumedAt != 0 && t >= q.resumedAt+int64(q.resolveAfter/time.Second)+q.width {
			out = append(out, q.end()...)
		}
	}
	opened := map[int64]int{}
	for _, ev := range events {
		if ev.Type == detect.TypeGapOpened && ev.Kind == detect.KindSilence {
			opened[ev.DetectedAt.Unix()]++
			q.silent[ev.GapID] = ev.StartedAt.Unix()
		}
	}
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
	for i, ev := range events {
		release(ev.Time.Unix())
		a := gaps[i]
		if ev.Type == detect.TypeGapOpened && ev.Kind == detect.KindSilence && !a.Planned {
			start, detected := ev.StartedAt.Unix(), ev.DetectedAt.Unix()
			if q.from == 0 { // the input's own silence (b)?
				key := [2]int64{start, detected}
				if _, ok := stopped[key]; !ok {
					since, err := q.inputStopped(ctx, ev)
					if err != nil {
						return nil, err
					}
					stopped[key] = since
				}
				if since := stopped[key]; since != 0 {
					q.from = since
					q.quiet[ev.GapID], q.held[ev.GapID] = true, a
					out = append(out, q.alert(TypePipelineDegraded, ev.DetectedAt, pipelineData{State: "input_quiet",
						Reason:    fmt.Sprintf("%d streams went silent together and nothing has arrived since %s: the input itself stopped (shippers or the bus?); their gaps are recorded, not alerted one by one", q.silentSince(start), ev.StartedAt.UTC().Format(time.RFC3339)),
						Watermark: ev.DetectedAt.UTC().Format(time.RFC3339)}))
					if err := resumed(); err != nil { // by the end of this step (a replay's chunk)
						return nil, err
					}
				}
			}
			switch {
			case q.from != 0:
				if (q.resumedAt == 0 || detected < q.resumedAt) && start >= q.from-q.width {
					q.quiet[ev.GapID], q.held[ev.GapID] = true, a
				}
			case slices.Contains(quietAt, detected): // half the streams at once (a)
				q.quiet[ev.GapID] = true
				rolled[detected]++
			}
		}
		if ev.Type == detect.TypeGapResolved {
			delete(q.silent, ev.GapID)
			delete(q.held, ev.GapID)
		}
		if q.quiet[a.GapID] {
			a.Suppressed = true
			gaps[i].Suppressed = true
			if a.Type == detect.TypeGapResolved {
				delete(q.quiet, a.GapID)
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
		out = append(out, q.alert(TypePipelineDegraded, at, pipelineData{State: "input_quiet",
			Reason:    fmt.Sprintf("%d of %d streams went silent at once: the input itself stopped (shippers or the bus?); their gaps are recorded, not alerted one by one", rolled[t], streams),
			Watermark: at.UTC().Format(time.RFC3339)}))
	}
	return out, nil
}

// inputStopped returns since when nothing has arrived, if the silence ev
// opens is the input's: at least 3 streams' silences started within a bucket
// of it and nothing has arrived since (case b); 0 if not.
func (q *quietRollup) inputStopped(ctx context.Context, ev detect.Event) (int64, error) {
	from := ev.StartedAt.Unix()
	if q.silentSince(from) < 3 {
		return 0, nil
	}
	if ev.Observed > 0 { // it stopped inside its first bucket: others may have sent in it too
		from += q.width
	}
	_, alive, err := q.firstArrival(ctx, from, ev.DetectedAt.Unix())
	if alive || err != nil {
		return 0, err
	}
	return from, nil
}

// silentSince counts the open silences that started at or after start, less a bucket.
func (q *quietRollup) silentSince(start int64) int {
	n := 0
	for _, s := range q.silent {
		if s >= start-q.width {
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
func (q *quietRollup) firstArrival(ctx context.Context, from, at int64) (int64, bool, error) {
	if at < from {
		return 0, false, nil
	}
	sc, err := q.counts.BucketCounts(ctx, storage.Arrival, time.Unix(from, 0), time.Unix(bucketStart(at, q.width)+q.width, 0))
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

// end ends an input-quiet episode: the gaps it rolled up that are still
// open, resolve_after past the input's return, are published now.
func (q *quietRollup) end() []storage.Alert {
	out := byTime(q.held)
	for _, a := range out {
		delete(q.quiet, a.GapID)
	}
	q.from, q.resumedAt, q.held = 0, 0, map[string]storage.Alert{}
	return out
}

// byTime returns the alerts of m in publication order: by time, then id.
func byTime(m map[string]storage.Alert) []storage.Alert {
	return slices.SortedFunc(maps.Values(m), func(a, b storage.Alert) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}
