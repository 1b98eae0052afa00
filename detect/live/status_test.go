package live

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// watchedStore and watchedSink call check when the detector is about to
// store a step and when it publishes: the moments the API's two sources of
// truth (the stored gaps, the alert topic) change.
type watchedStore struct {
	*memstore.Store
	check func(when string)
}

func (w *watchedStore) WriteAlerts(ctx context.Context, b storage.AlertBatch) error {
	w.check(fmt.Sprintf("storing step %d", b.DetectProgress.Seq))
	return w.Store.WriteAlerts(ctx, b)
}

type watchedSink struct {
	*fakeSink
	check func(when string)
}

func (w *watchedSink) Publish(ctx context.Context, alerts []storage.Alert) error {
	w.check(fmt.Sprintf("publishing %d alerts", len(alerts)))
	return w.fakeSink.Publish(ctx, alerts)
}

// disagreements lists the streams whose status (as the API shows it)
// disagrees with their open gap on record.
func disagreements(t testing.TB, st *memstore.Store, d *Detector) []string {
	gaps, err := st.Gaps(context.Background(), storage.GapQuery{State: storage.GapsOpen})
	require.NoError(t, err)
	want := map[streamKey]string{}
	for _, g := range gaps {
		s := map[string]string{"silence": "gap", "drop": "drop", "late": "late"}[g.Kind]
		if g.Planned {
			s = "planned"
		}
		want[streamKey{g.Tenant, g.Source}] = s
	}
	var out []string
	for _, s := range d.Streams("", "") {
		w, open := want[streamKey{s.Tenant, s.Source}]
		if open && s.Status != w || !open && !slices.Contains([]string{"ok", "learning", "retired"}, s.Status) {
			out = append(out, fmt.Sprintf("%s/%s shows %s, its open gap on record: %q", s.Tenant, s.Source, s.Status, w))
		}
	}
	return out
}

// Issue 16: right after a gap opened, /api/v1/streams showed the stream ok.
// A stream's status must agree with its gap on record whenever the API or
// the alert topic can tell: when a step is stored (the status is not ahead)
// and when it is published (the status has caught up). The gap here opens
// at a peek inside the first empty minute (the status used to follow
// Advance's judged buckets only, a bucket later), resolves (the status used
// to turn ok before the resolution was stored), and the detector restarts
// in between (the replay used to forget the peek's gap).
func TestStatusAgreesWithTheStoredGap(t *testing.T) {
	ctx := context.Background()
	p := &pipeline{st: memstore.New(0)}
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	minute := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	both := map[string]uint64{"a": 300, "b": 300}
	for i := range 30 {
		p.upTo(t, minute(i), minute(i+1), both)
	}
	var d *Detector
	var checks int
	var failures []string
	check := func(when string) {
		if d == nil {
			return // starting: nothing served yet
		}
		checks++
		for _, s := range disagreements(t, p.st, d) {
			failures = append(failures, when+": "+s)
		}
	}
	sink := &watchedSink{fakeSink: &fakeSink{}, check: check}
	start := func() {
		d = nil
		var err error
		d, err = New(Config{Engine: detect.Config{Workers: 2}, Topics: []string{"logs"}, Delay: time.Second},
			Deps{Store: &watchedStore{Store: p.st, check: check}, Sink: sink, Input: oneTopic{}, Now: func() time.Time { return p.now }})
		require.NoError(t, err)
		require.NoError(t, d.recover(ctx))
		require.NoError(t, d.warmUp(ctx))
		check("after a restart")
	}
	start()
	// Minute 30: b sends nothing; the watermark passes the slots of the minute.
	for _, sec := range []int{10, 20, 35, 50} {
		p.upTo(t, minute(30), minute(30).Add(time.Duration(sec)*time.Second), map[string]uint64{"a": 300 * uint64(sec) / 60})
		require.NoError(t, d.tick(ctx))
	}
	opened := sink.ofType(detect.TypeGapOpened)
	require.Len(t, opened, 1)
	require.True(t, opened[0].DetectedAt.Before(minute(31)), "opened by a peek inside the minute: %s", opened[0].DetectedAt)
	require.Equal(t, "gap", d.Streams("t", "b")[0].Status)
	start() // right after the peek
	require.Equal(t, "gap", d.Streams("t", "b")[0].Status)
	for i := 30; i < 60; i++ {
		counts := both
		if i < 33 {
			counts = map[string]uint64{"a": 300}
		}
		p.upTo(t, minute(i), minute(i+1), counts)
		require.NoError(t, d.tick(ctx))
	}
	require.Len(t, sink.ofType(detect.TypeGapResolved), 1)
	require.Equal(t, "ok", d.Streams("t", "b")[0].Status)
	require.Greater(t, checks, 30)
	require.Empty(t, failures)
}

// The status table alone: a stream's status follows its open gaps, the
// silence or drop before the late one, planned when that gap is; nothing
// shows before commit.
func TestStatusTableFollowsOpenGaps(t *testing.T) {
	tb, v := newStatusTable(60, 24*time.Hour), newStatusView()
	b := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	tb.judged(detect.Result{Expectations: []detect.Expectation{{Tenant: "t", Source: "a", Bucket: b, State: "ok", Expected: 10, Observed: 10,
		Profile: detect.ProfileHourly, Weekend: detect.WeekendLearned}}},
		[]storage.Count{{Tenant: "t", Source: "a", Bucket: b.Unix() - 3600}, {Tenant: "t", Source: "a", Bucket: b.Unix()}})
	require.Empty(t, v.list("", ""), "nothing before commit")
	status := func() string {
		tb.commit(v)
		return v.list("t", "a")[0].Status
	}
	require.Equal(t, "ok", status())
	require.InDelta(t, 1+1.0/60, v.list("t", "a")[0].HistoryHours, 1e-9, "from its first count to the end of its last judged bucket")
	require.Equal(t, []string{"hourly", "learned"}, []string{v.list("t", "a")[0].Profile, v.list("t", "a")[0].Weekend}, "as the engine judged it")
	gap := func(typ string, id string, kind detect.Kind, planned bool) storage.Alert {
		return storage.Alert{Type: typ, GapID: id, Tenant: "t", Source: "a", Kind: string(kind), Planned: planned}
	}
	tb.gapAlerts([]storage.Alert{gap(detect.TypeGapOpened, "l", detect.KindLate, false)})
	require.Equal(t, "late", status())
	tb.gapAlerts([]storage.Alert{gap(detect.TypeGapOpened, "d", detect.KindDrop, false)})
	require.Equal(t, "drop", status())
	tb.gapAlerts([]storage.Alert{gap(detect.TypeGapUpdated, "d", detect.KindDrop, false)})
	require.Equal(t, "drop", status())
	tb.gapAlerts([]storage.Alert{gap(detect.TypeGapUpdated, "d", detect.KindSilence, false)})
	require.Equal(t, "gap", status(), "a drop that became a silence (the stream stopped late in a bucket)")
	tb.gapAlerts([]storage.Alert{gap(detect.TypeGapResolved, "d", detect.KindSilence, false),
		gap(detect.TypeGapOpened, "s", detect.KindSilence, true)})
	require.Equal(t, "planned", status())
	tb.gapAlerts([]storage.Alert{gap(detect.TypeGapResolved, "s", detect.KindSilence, true)})
	require.Equal(t, "late", status())
	tb.gapAlerts([]storage.Alert{gap(detect.TypeGapResolved, "l", detect.KindLate, false)})
	require.Equal(t, "ok", status())
}

// On a first start the gaps history leaves open are stored, the planned ones
// too (recorded, not published, as live): a stream that shows planned has
// its gap on record.
func TestFirstStartRecordsPlannedGapsOpenInHistory(t *testing.T) {
	ctx := context.Background()
	p := &pipeline{st: memstore.New(0)}
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	require.NoError(t, p.st.PutSilence(ctx, storage.Silence{ID: "m1", Tenant: "t", Source: "b",
		StartsAt: t0.Add(39 * time.Minute), EndsAt: t0.Add(90 * time.Minute)}))
	for i := range 60 {
		counts := map[string]uint64{"a": 300, "b": 300, "c": 300}
		if i >= 40 {
			delete(counts, "b") // down for maintenance
			delete(counts, "c") // gone
		}
		p.minute(t, t0.Add(time.Duration(i)*time.Minute), counts)
	}
	sink := &fakeSink{}
	d := newDetector(t, p, sink)
	opened := sink.ofType(detect.TypeGapOpened)
	require.Len(t, opened, 1, "c's gap is published, b's is planned")
	require.Equal(t, "t/c", opened[0].Key)
	got := map[string]string{}
	for _, s := range d.Streams("", "") {
		got[s.Source] = s.Status
	}
	require.Equal(t, map[string]string{"a": "ok", "b": "planned", "c": "gap"}, got)
	require.Empty(t, disagreements(t, p.st, d))
}
