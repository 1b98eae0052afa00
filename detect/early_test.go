package detect

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/storage"
)

// arrived is one stream's count of one bucket whose events arrived at
// firstArrival (seconds into the bucket) and after.
type arrived struct {
	source string
	bucket int
	events uint64
	first  int64
}

// TestPeekIsReplay: live detection peeks into the bucket being filled at its
// slots and then judges it whole; a replay judges the complete counts in one
// call. Both must open the same gaps at the same slots, byte for byte —
// including a stream that comes back within the bucket after a slot.
func TestPeekIsReplay(t *testing.T) {
	const w = 60
	hist := 60
	var counts []arrived
	for i := range hist {
		for _, src := range []string{"stops", "pauses", "steady", "sparse"} {
			n := uint64(300)
			if src == "sparse" {
				n = uint64(i % 2) // one event every other minute
			}
			if n > 0 {
				counts = append(counts, arrived{src, i, n, 1})
			}
		}
	}
	// Minute 60: "stops" sends its last events in the first 20 s; "pauses"
	// sends none until 40 s into it; "steady" goes on.
	counts = append(counts, arrived{"stops", hist, 100, 1}, arrived{"pauses", hist, 100, 40}, arrived{"steady", hist, 300, 1},
		arrived{"pauses", hist + 1, 300, 1}, arrived{"steady", hist + 1, 300, 1})
	for i := hist + 2; i < hist+30; i++ {
		counts = append(counts, arrived{"pauses", i, 300, 1}, arrived{"steady", i, 300, 1})
	}
	countsOf := func(bucket int, before int64) []storage.Count { // the bucket's counts stored by then
		var out []storage.Count
		for _, c := range counts {
			at := t0 + int64(c.bucket)*w + c.first
			if c.bucket == bucket && c.events > 0 && at < before {
				out = append(out, storage.Count{Tenant: "t", Source: c.source, Bucket: t0 + int64(c.bucket)*w, Events: c.events, Arrival: at})
			}
		}
		return out
	}
	n := hist + 30

	live, err := New(Config{Workers: 2})
	require.NoError(t, err)
	var liveEvents []Event
	for i := range n {
		start := t0 + int64(i)*w
		if i > 0 {
			for _, slot := range []int64{15, 30, 45} {
				liveEvents = append(liveEvents, live.Peek(time.Unix(start+slot, 0), countsOf(i, start+slot)).Events...)
			}
		}
		liveEvents = append(liveEvents, live.Advance(time.Unix(start+w, 0), countsOf(i, start+w)).Events...)
	}

	replay, err := New(Config{Workers: 3})
	require.NoError(t, err)
	var all []storage.Count
	for i := range n {
		all = append(all, countsOf(i, t0+int64(n)*w)...)
	}
	replayEvents := replay.Advance(time.Unix(t0+int64(n)*w, 0), all).Events

	require.Equal(t, lines(liveEvents), lines(replayEvents))
	opened := of(liveEvents, TypeGapOpened)
	require.Len(t, opened, 2, "%s", lines(liveEvents))
	byStream := map[string]Event{}
	for _, ev := range opened {
		byStream[ev.Source] = ev
	}
	stops, pauses := byStream["stops"], byStream["pauses"]
	m61 := t0 + int64(hist+1)*w
	require.Equal(t, m61, stops.StartedAt.Unix(), "the first empty bucket")
	require.Less(t, stops.DetectedAt.Unix(), m61+w, "inside it, not at its end")
	require.Equal(t, t0+int64(hist)*w, pauses.StartedAt.Unix())
	require.Less(t, pauses.DetectedAt.Unix(), t0+int64(hist)*w+40, "before it came back")
	require.Positive(t, stops.Expected)
	require.Equal(t, stops.Expected, stops.Missing)
	require.NotContains(t, byStream, "sparse", "a sparse stream is not flagged within minutes")

	// Without arrival times (a backtest of bucket counts), an empty bucket is
	// still empty at every slot, but a bucket with events is judged at its end.
	blind, err := New(Config{})
	require.NoError(t, err)
	for i := range all {
		all[i].Arrival = 0
	}
	blindOpened := of(blind.Advance(time.Unix(t0+int64(n)*w, 0), all).Events, TypeGapOpened)
	require.Len(t, blindOpened, 1, "pauses: a third of minute 60 arrived, judged at its end: no gap")
	require.Equal(t, "stops", blindOpened[0].Source)
	require.Equal(t, stops.DetectedAt, blindOpened[0].DetectedAt)
}

func lines(evs []Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		b, _ := json.Marshal(ev)
		out[i] = string(b)
	}
	return out
}

// A stream flagged early in a bucket that comes back later in the same
// bucket: the gap keeps that bucket (its missing events), it does not end
// where it started.
func TestBackWithinTheEarlyBucket(t *testing.T) {
	e, err := New(Config{Workers: 1})
	require.NoError(t, err)
	const w = 60
	for i := range 40 {
		b := t0 + int64(i)*w
		e.Advance(time.Unix(b+w, 0), []storage.Count{{Tenant: "t", Source: "s", Bucket: b, Events: 300, Arrival: b + 1}})
	}
	b := t0 + 40*w
	opened := of(e.Peek(time.Unix(b+30, 0), nil).Events, TypeGapOpened)
	require.Len(t, opened, 1)
	var evs []Event
	evs = append(evs, e.Advance(time.Unix(b+w, 0), []storage.Count{{Tenant: "t", Source: "s", Bucket: b, Events: 120, Arrival: b + 36}}).Events...)
	for i := 41; i < 70; i++ {
		b := t0 + int64(i)*w
		evs = append(evs, e.Advance(time.Unix(b+w, 0), []storage.Count{{Tenant: "t", Source: "s", Bucket: b, Events: 300, Arrival: b + 1}}).Events...)
	}
	resolved := of(evs, TypeGapResolved)
	require.Len(t, resolved, 1)
	r := resolved[0]
	require.Equal(t, b, r.StartedAt.Unix())
	require.Equal(t, b+w, r.EndedAt.Unix(), "the gap keeps the bucket it opened in")
	require.InDelta(t, 180, r.Missing, 30)
}
