package live

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// late writes events of stream t/b counted by event time in bucket at that
// arrived at arrival (as ingest counts a backlog).
func (p *pipeline) late(t *testing.T, at, arrival time.Time, n uint64) {
	require.NoError(t, p.st.Write(context.Background(), storage.Batch{Counts: []storage.Count{
		{Tenant: "t", Source: "b", Clock: storage.Event, Bucket: at.Unix(), Events: n, Arrival: arrival.Unix()}}}))
}

// A shipper stuck for five minutes sends most of its backlog when it comes
// back and the rest half an hour later: the resolved gap is updated twice,
// by event time, and neither a restart nor a replay publishes anything again.
func TestLateDataFillsAResolvedGap(t *testing.T) {
	ctx := context.Background()
	p := &pipeline{st: memstore.New(0)}
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	minute := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	normal := func(i int, sources ...string) {
		counts := map[string]uint64{}
		for _, s := range sources {
			counts[s] = 300
		}
		p.minute(t, minute(i), counts)
		if len(counts) == 2 {
			p.late(t, minute(i), minute(i).Add(30*time.Second), 300) // on time
		}
	}
	for i := range 30 {
		normal(i, "a", "b")
	}
	sink := &fakeSink{}
	d := newDetector(t, p, sink)
	for i := 30; i < 35; i++ { // b is stuck
		normal(i, "a")
		require.NoError(t, d.tick(ctx))
	}
	require.Len(t, sink.ofType(detect.TypeGapOpened), 1)
	// b comes back with minutes 30-33 of its backlog.
	for i := 30; i < 34; i++ {
		p.late(t, minute(i), minute(35).Add(40*time.Second), 300)
	}
	for i := 35; i < 70; i++ {
		normal(i, "a", "b")
		if i == 35 {
			p.minute(t, minute(35), map[string]uint64{"b": 1200}) // the backlog arrived in minute 35
		}
		require.NoError(t, d.tick(ctx))
	}
	resolved := sink.ofType(detect.TypeGapResolved)
	require.Len(t, resolved, 1)
	r := resolved[0]
	require.True(t, r.StartedAt.Equal(minute(30)) && r.EndedAt.Equal(minute(35)), "gap %s – %s", r.StartedAt, r.EndedAt)
	require.Less(t, r.Observed, 10.0, "on the arrival clock the backlog came after the gap")
	updates := func() []storage.Alert {
		var out []storage.Alert
		for _, a := range sink.ofType(detect.TypeGapUpdated) {
			if a.Time.After(r.Time) || a.Time.Equal(r.Time) {
				out = append(out, a)
			}
		}
		return out
	}
	got := updates()
	require.Len(t, got, 1, "the backlog that came back with the stream")
	require.Equal(t, r.GapID, got[0].GapID)
	require.Equal(t, r.Seq+1, got[0].Seq)
	require.True(t, got[0].Time.Equal(r.Time), "taken in when the gap resolved: %s", got[0].Time)
	require.Equal(t, 1200.0, got[0].Observed)
	require.InDelta(t, r.Expected-1200, got[0].Missing, 0.001)
	require.True(t, got[0].EndedAt.Equal(r.EndedAt), "an update after the resolve keeps ended_at")
	require.Contains(t, string(got[0].Payload), `"observed_events":1200`)

	// The rest arrives in minute 70: one more update at the end of that minute.
	p.late(t, minute(34), minute(70).Add(5*time.Second), 300)
	for i := 70; i < 75; i++ {
		normal(i, "a", "b")
		require.NoError(t, d.tick(ctx))
	}
	got = updates()
	require.Len(t, got, 2)
	require.Equal(t, r.Seq+2, got[1].Seq)
	require.True(t, got[1].Time.Equal(minute(71)), "at %s", got[1].Time)
	require.Equal(t, 1500.0, got[1].Observed)
	require.InDelta(t, max(0, r.Expected-1500), got[1].Missing, 0.001)
	gaps, err := p.st.Gaps(ctx, storage.GapQuery{State: storage.GapsResolved})
	require.NoError(t, err)
	require.Len(t, gaps, 1)
	require.Equal(t, 1500.0, gaps[0].Observed, "the gap's record is filled in")

	// A restart rebuilds what was filled in: nothing again.
	before := len(sink.log)
	d = newDetector(t, p, sink)
	for i := 75; i < 80; i++ {
		normal(i, "a", "b")
		require.NoError(t, d.tick(ctx))
	}
	for _, a := range sink.log[before:] {
		require.NotEqual(t, detect.TypeGapUpdated, a.Type, "published again after a restart: %+v", a)
	}

	// A replay of the same history from scratch (another replica, or history
	// judged in big steps) gives the same updates.
	replay := &fakeSink{}
	rp := &pipeline{st: p.st, now: p.now}
	d2, err := New(Config{Engine: detect.Config{Workers: 2}, Topics: []string{"logs"}, Delay: time.Second},
		Deps{Store: freshProgress{p.st}, Sink: replay, Input: oneTopic{}, Now: func() time.Time { return rp.now }})
	require.NoError(t, err)
	d2.judged = minute(30).Unix() // as if it started then, judging everything after in one step
	d2.seq = 1
	require.NoError(t, d2.warmUp(ctx))
	d2.stepCells = 1 << 30
	require.NoError(t, d2.tick(ctx))
	var replayed []storage.Alert
	for _, a := range replay.ofType(detect.TypeGapUpdated) {
		if !a.Time.Before(r.Time) {
			replayed = append(replayed, a)
		}
	}
	require.Len(t, replayed, 2)
	for i := range replayed {
		require.Equal(t, got[i].ID, replayed[i].ID)
		require.Equal(t, string(got[i].Payload), string(replayed[i].Payload))
	}
}

// freshProgress is a store without detection progress or alerts of its own
// (a replica starting over the same counts).
type freshProgress struct{ *memstore.Store }

func (f freshProgress) DetectProgress(context.Context, int, int) (storage.DetectProgress, bool, error) {
	return storage.DetectProgress{}, false, nil
}

func (f freshProgress) WriteAlerts(context.Context, storage.AlertBatch) error { return nil }

func (f freshProgress) WriteExpectations(context.Context, []storage.Expectation) error { return nil }
