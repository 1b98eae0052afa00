package live

import (
	"cmp"
	"context"
	"math"
	"slices"
	"time"

	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/storage"
)

// Late data that fills a hole. A silence or drop is judged on the arrival
// clock; when the events of its period arrive later (a shipper that was stuck
// sends its backlog), they are counted by event time. For Config.FillWindow
// after a gap resolved, the detector follows the events of the gap's buckets
// on the event clock and publishes a gap.updated (after the gap.resolved)
// whenever they cover a further tenth of what was missing: observed_events and
// missing_events are then by event time.
//
// Replay gives the same updates as live: a count row records when its events
// arrived (storage.Count.Arrival), and late rows are taken in at the first
// bucket end after their arrival, whatever steps the buckets are judged in.

// maxFills bounds the resolved gaps followed at once; past it the ones whose
// window ends first are dropped.
const maxFills = 10_000

// fill is a resolved gap followed for late data.
type fill struct {
	ev       detect.Event // the gap.resolved; updates copy it
	planned  bool
	quiet    bool
	at       int64   // arrivals before this are in received (0: none read yet)
	until    int64   // last bucket end of the window
	received float64 // events of the gap's buckets on the event clock, arrived before at
	reported float64 // observed events last published
	step     float64 // the change worth an update
}

// byThenGap orders fills by key, then by gap id: deterministic whatever the
// map order.
func byThenGap(key func(*fill) int64) func(a, b *fill) int {
	return func(a, b *fill) int {
		if c := cmp.Compare(key(a), key(b)); c != 0 {
			return c
		}
		return cmp.Compare(a.ev.GapID, b.ev.GapID)
	}
}

func (f *fill) span() storage.StreamSpan {
	return storage.StreamSpan{Tenant: f.ev.Tenant, Source: f.ev.Source, From: f.ev.StartedAt.Unix(), To: f.ev.EndedAt.Unix()}
}

// follow starts following the resolved silences and drops of a step's events
// (gaps[i] is events[i]'s alert as stored: planned or suppressed).
func (d *Detector) follow(events []detect.Event, gaps []storage.Alert) {
	if d.cfg.FillWindow <= 0 {
		return
	}
	for i, ev := range events {
		if ev.Type != detect.TypeGapResolved || ev.Retired || ev.Kind == detect.KindLate || !ev.StartedAt.Before(ev.EndedAt) {
			continue
		}
		missing := math.Max(0, ev.Expected-ev.Observed)
		if missing < 1 {
			continue
		}
		d.fills[ev.GapID] = &fill{ev: ev, planned: gaps[i].Planned, quiet: gaps[i].Suppressed,
			until: ev.Time.Unix() + int64(d.cfg.FillWindow/time.Second), reported: ev.Observed, step: math.Max(1, missing/10)}
	}
	if over := len(d.fills) - maxFills; over > 0 {
		all := make([]*fill, 0, len(d.fills))
		for _, f := range d.fills {
			all = append(all, f)
		}
		slices.SortFunc(all, byThenGap(func(f *fill) int64 { return f.until }))
		for _, f := range all[:over] {
			delete(d.fills, f.ev.GapID)
		}
		d.log.Warn("too many resolved gaps followed for late data: dropped the oldest", "dropped", over, "max", maxFills)
	}
}

// filled reads the late arrivals before to (the end of the step's last
// bucket) of the followed gaps and returns their updates, in order; gaps
// whose window ended are forgotten.
func (d *Detector) filled(ctx context.Context, to int64) ([]storage.Alert, error) {
	if len(d.fills) == 0 {
		return nil, nil
	}
	fills := make([]*fill, 0, len(d.fills))
	for _, f := range d.fills {
		fills = append(fills, f)
	}
	slices.SortFunc(fills, byThenGap(func(f *fill) int64 { return f.at }))
	// One query per arrival range (new fills read from the start, the others
	// from where they stopped) and per MaxArrivedSpans gaps.
	rows := make(map[*fill][]storage.Arrived, len(fills))
	for start := 0; start < len(fills); {
		end := start + 1
		for end < len(fills) && end-start < storage.MaxArrivedSpans && fills[end].at == fills[start].at {
			end++
		}
		group := fills[start:end]
		start = end
		q := storage.ArrivedQuery{ArrivedFrom: group[0].at, ArrivedTo: to, Spans: make([]storage.StreamSpan, len(group))}
		for i, f := range group {
			q.Spans[i] = f.span()
		}
		got, err := d.deps.Store.Arrived(ctx, q)
		if err != nil {
			return nil, err
		}
		byStream := make(map[streamKey][]*fill, len(group))
		for _, f := range group {
			k := streamKey{f.ev.Tenant, f.ev.Source}
			byStream[k] = append(byStream[k], f)
		}
		for _, a := range got {
			for _, f := range byStream[streamKey{a.Tenant, a.Source}] {
				if a.Bucket >= f.ev.StartedAt.Unix() && a.Bucket < f.ev.EndedAt.Unix() {
					rows[f] = append(rows[f], a)
				}
			}
		}
	}
	slices.SortFunc(fills, func(a, b *fill) int { return cmp.Compare(a.ev.GapID, b.ev.GapID) })
	var out []storage.Alert
	for _, f := range fills {
		out = append(out, d.fillUpdates(f, rows[f], to)...)
		if f.until <= to {
			delete(d.fills, f.ev.GapID)
		}
	}
	slices.SortStableFunc(out, func(a, b storage.Alert) int { return a.Time.Compare(b.Time) })
	return out, nil
}

// fillUpdates takes in f's late rows (arrived in [f.at, to)) bucket end by
// bucket end and returns the updates due.
func (d *Detector) fillUpdates(f *fill, rows []storage.Arrived, to int64) []storage.Alert {
	resolved := f.ev.Time.Unix()
	due := func(arrival int64) int64 { // the bucket end that takes a row in
		return max(resolved, d.bucketOf(arrival)+d.width)
	}
	slices.SortFunc(rows, func(a, b storage.Arrived) int { return cmp.Compare(a.Arrival, b.Arrival) })
	var out []storage.Alert
	for i := 0; i < len(rows); {
		t := due(rows[i].Arrival)
		if t > f.until {
			break
		}
		for ; i < len(rows) && due(rows[i].Arrival) == t; i++ {
			f.received += float64(rows[i].Events)
		}
		if f.received-f.reported < f.step {
			continue
		}
		f.reported = f.received
		ev := f.ev
		ev.Type, ev.Time, ev.Seq = detect.TypeGapUpdated, time.Unix(t, 0).UTC(), f.ev.Seq+1
		ev.Observed, ev.Missing = f.received, math.Max(0, ev.Expected-f.received)
		f.ev.Seq++
		a := gapAlert(ev)
		a.Planned, a.Suppressed = f.planned, f.quiet
		out = append(out, a)
	}
	f.at = to
	return out
}
