package detect

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/storage"
)

// TestRetirement: a stream that stops is retired exactly RetireAfter after the
// end of its last bucket with events, not a bucket before; its open silence is
// resolved with the retired flag; its state is freed; when it sends again it
// starts afresh.
func TestRetirement(t *testing.T) {
	const retire = 2 * time.Hour
	e, err := New(Config{Bucket: time.Minute, Workers: 1, RetireAfter: retire, Expectations: true})
	require.NoError(t, err)
	var evs []Event
	for i := range 60 {
		res := e.Advance(time.Unix(t0+int64(i+1)*60, 0), []storage.Count{{Tenant: "acme", Source: "fw", Bucket: t0 + int64(i)*60, Events: 100}})
		evs = append(evs, res.Events...)
		require.Empty(t, res.Retired)
	}
	active := t0 + 60*60 // end of the last bucket with events
	at := active + int64(retire/time.Second)
	// Up to one bucket before: the stream is held, its silence open.
	res := e.Advance(time.Unix(at-60, 0), nil)
	evs = append(evs, res.Events...)
	require.Empty(t, res.Retired)
	require.Equal(t, 1, e.Streams())
	opened := of(evs, TypeGapOpened)
	require.Len(t, opened, 1)
	require.Empty(t, of(evs, TypeGapResolved))

	res = e.Advance(time.Unix(at, 0), nil)
	require.Equal(t, []StreamRef{{Tenant: "acme", Source: "fw", At: time.Unix(at, 0).UTC()}}, res.Retired)
	require.Zero(t, e.Streams(), "the retired stream's state is freed")
	require.Empty(t, e.shards[0].streams)
	resolved := of(res.Events, TypeGapResolved)
	require.Len(t, resolved, 1)
	r := resolved[0]
	require.True(t, r.Retired)
	require.Equal(t, opened[0].GapID, r.GapID)
	require.Equal(t, at, r.EndedAt.Unix())
	require.Equal(t, at, r.Time.Unix())
	require.Zero(t, r.Observed)
	// Expected accounted from the gap's start up to the retirement: 2h at 100/min.
	require.InEpsilon(t, float64(at-r.StartedAt.Unix())/60*100, r.Expected, 0.2)
	var ce struct {
		Data map[string]any `json:"data"`
	}
	require.NoError(t, json.Unmarshal(r.AppendLine(nil), &ce))
	require.Equal(t, true, ce.Data["retired"])
	require.Equal(t, time.Unix(at, 0).UTC().Format(time.RFC3339), ce.Data["ended_at"])
	require.NotContains(t, string(opened[0].AppendLine(nil)), "retired", "other events are unchanged")

	// Nothing more for the retired stream.
	res = e.Advance(time.Unix(at+3600, 0), nil)
	require.Empty(t, res.Events)
	require.Empty(t, res.Retired)

	// It sends again: a fresh stream, learning from its new first bucket.
	b := at + 3600
	res = e.Advance(time.Unix(b+60, 0), []storage.Count{{Tenant: "acme", Source: "fw", Bucket: b, Events: 100}})
	require.Equal(t, 1, e.Streams())
	require.Len(t, res.Expectations, 1)
	require.Equal(t, "learning", res.Expectations[0].State)
	st := e.shards[0].streams[streamKey{"acme", "fw"}]
	require.Equal(t, b, st.first)
	require.Zero(t, st.base.n-1, "one bucket learned")
}

// TestRetirementWithoutGap: a stream that never opened a gap (learning, or too
// sparse to be certain) is retired without any event.
func TestRetirementWithoutGap(t *testing.T) {
	e, err := New(Config{Bucket: time.Minute, Workers: 2, RetireAfter: time.Hour})
	require.NoError(t, err)
	res := e.Advance(time.Unix(t0+60, 0), []storage.Count{{Tenant: "a", Source: "b", Bucket: t0, Events: 1}})
	require.Empty(t, res.Retired)
	res = e.Advance(time.Unix(t0+60+3600-60, 0), nil)
	require.Empty(t, res.Retired)
	res = e.Advance(time.Unix(t0+60+3600, 0), nil)
	require.Empty(t, res.Events)
	require.Len(t, res.Retired, 1)
	require.Zero(t, e.Streams())
}

// TestRetirementSplitCalls: retiring and resuming inside one call gives what
// bucket-by-bucket calls give.
func TestRetirementSplitCalls(t *testing.T) {
	cfg := Config{Bucket: time.Minute, RetireAfter: time.Hour}
	counts := diurnal(21, 6*60, time.Minute, 50, 0.05)
	for i := 60; i < 200; i++ {
		counts[i] = 0 // 140 minutes off: retired at minute 120
	}
	ss := []series{{"acme", "fw", counts}}
	one, oneRetired := replayRetired(t, cfg, ss, 1)
	require.Len(t, oneRetired, 1)
	require.Equal(t, t0+120*60, oneRetired[0].At.Unix())
	require.Len(t, of(one, TypeGapResolved), 1)
	require.True(t, of(one, TypeGapResolved)[0].Retired)
	for _, chunk := range []int{7, 60, 6 * 60} {
		t.Run(fmt.Sprint(chunk), func(t *testing.T) {
			evs, retired := replayRetired(t, cfg, ss, chunk)
			require.Equal(t, string(render(one)), string(render(evs)))
			require.Equal(t, oneRetired, retired)
		})
	}
}

// replayRetired feeds the series in calls of chunk buckets each and returns the
// events and retirements.
func replayRetired(tb testing.TB, cfg Config, ss []series, chunk int) ([]Event, []StreamRef) {
	tb.Helper()
	e, err := New(cfg)
	require.NoError(tb, err)
	n := 0
	for _, s := range ss {
		n = max(n, len(s.counts))
	}
	var evs []Event
	var retired []StreamRef
	for start := 0; start < n; start += chunk {
		var cs []storage.Count
		end := min(start+chunk, n)
		for _, s := range ss {
			for i := start; i < end && i < len(s.counts); i++ {
				if s.counts[i] > 0 {
					cs = append(cs, storage.Count{Tenant: s.tenant, Source: s.source, Bucket: t0 + int64(i)*60, Events: s.counts[i]})
				}
			}
		}
		res := e.Advance(time.Unix(t0+int64(end)*60, 0), cs)
		evs = append(evs, res.Events...)
		retired = append(retired, res.Retired...)
	}
	sortEvents(evs)
	return evs, retired
}
