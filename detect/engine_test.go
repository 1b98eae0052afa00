package detect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/simulate"
	"github.com/gapwatch/gapwatch/storage"
)

// t0 is a Monday, 00:00 UTC.
var t0 = time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC).Unix()

// series is one stream's counts from t0 on, one per bucket.
type series struct {
	tenant, source string
	counts         []uint64
}

// replay drives an engine bucket by bucket and returns every event.
func replay(tb testing.TB, cfg Config, ss []series) []Event {
	tb.Helper()
	e, err := New(cfg)
	require.NoError(tb, err)
	return replayOn(tb, e, ss, 0)
}

func replayOn(tb testing.TB, e *Engine, ss []series, from int) []Event {
	tb.Helper()
	w := int64(e.Config().Bucket / time.Second)
	n := 0
	for _, s := range ss {
		n = max(n, len(s.counts))
	}
	var out []Event
	for i := from; i < n; i++ {
		var cs []storage.Count
		for _, s := range ss {
			if i < len(s.counts) && s.counts[i] > 0 {
				cs = append(cs, storage.Count{Tenant: s.tenant, Source: s.source, Bucket: t0 + int64(i)*w, Events: s.counts[i]})
			}
		}
		out = append(out, e.Advance(time.Unix(t0+int64(i+1)*w, 0), cs).Events...)
	}
	return out
}

// diurnal returns n buckets of width w with mean perMin events per minute and a
// day/night ratio of about 3.
func diurnal(seed uint64, n int, w time.Duration, perMin, a float64) []uint64 {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]uint64, n)
	for i := range out {
		t := float64(i) * w.Seconds()
		shape := 1 + 0.5*math.Sin(2*math.Pi*(t/86400-0.3))
		out[i] = simulate.GammaPoisson(r, perMin*w.Minutes()*shape, a)
	}
	return out
}

func of(evs []Event, typ string) []Event {
	var out []Event
	for _, ev := range evs {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

func TestSilence(t *testing.T) {
	minute := time.Minute
	cases := []struct {
		name        string
		history     []uint64      // counts before the silence
		silence     int           // empty buckets
		wantBy      time.Duration // opened at most this long after the silence started
		notBefore   time.Duration // and not before
		wantKind    Kind
		description string
	}{
		// A busy stream is flagged inside its first empty bucket (early silence).
		{name: "busy stream, 5 minutes of history (cold start)", history: []uint64{300, 290, 310, 305, 296},
			silence: 10, wantBy: 45 * time.Second, notBefore: 15 * time.Second, wantKind: KindSilence},
		{name: "busy stream, 3 days of history", history: diurnal(1, 3*1440, minute, 300, 0.1),
			silence: 10, wantBy: 45 * time.Second, notBefore: 15 * time.Second, wantKind: KindSilence},
		{name: "1 event per hour: not after 30 minutes, flagged within a day", history: diurnal(2, 3*1440, minute, 1.0/60, 0),
			silence: 1440, wantBy: 24 * time.Hour, notBefore: 31 * time.Minute, wantKind: KindSilence},
		{name: "10 events per minute", history: diurnal(3, 3*1440, minute, 10, 0.2),
			silence: 30, wantBy: 5 * time.Minute, notBefore: 15 * time.Second, wantKind: KindSilence},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			counts := append(append([]uint64{}, tc.history...), make([]uint64, tc.silence)...)
			evs := replay(t, Config{Bucket: minute}, []series{{"acme", "firewall", counts}})
			opened := of(evs, TypeGapOpened)
			require.Len(t, opened, 1, "events: %v", evs)
			ev := opened[0]
			require.Equal(t, tc.wantKind, ev.Kind)
			silenceStart := t0 + int64(len(tc.history))*60
			into := time.Duration(ev.DetectedAt.Unix()-silenceStart) * time.Second
			require.LessOrEqual(t, into, tc.wantBy)
			require.GreaterOrEqual(t, into, tc.notBefore)
			// The gap starts at the first empty bucket (or shortly before, for a sparse stream).
			require.LessOrEqual(t, ev.StartedAt.Unix(), silenceStart)
			require.Greater(t, ev.StartedAt.Unix(), silenceStart-3*3600)
			require.Zero(t, ev.Observed)
		})
	}
}

func TestQuietStreamsDoNotAlarm(t *testing.T) {
	// Healthy streams from 0.05 to 1000 events per minute, overdispersed,
	// a week at 1-minute buckets: no gap.
	var ss []series
	for i, rate := range []float64{0.05, 0.5, 5, 50, 1000} {
		ss = append(ss, series{"t", fmt.Sprint("s", i), diurnal(uint64(10+i), 7*1440, time.Minute, rate, 0.1)})
	}
	evs := replay(t, Config{Bucket: time.Minute}, ss)
	require.Empty(t, evs)
}

func TestDrop(t *testing.T) {
	for _, loss := range []float64{0.5, 0.7, 0.9} {
		t.Run(fmt.Sprint(loss), func(t *testing.T) {
			h := diurnal(4, 3*1440, time.Minute, 100, 0.05)
			after := diurnal(5, 120, time.Minute, 100*(1-loss), 0.05)
			// keep the diurnal phase: scale the continuation of the same shape
			evs := replay(t, Config{Bucket: time.Minute}, []series{{"acme", "edr", append(h, after...)}})
			opened := of(evs, TypeGapOpened)
			require.Len(t, opened, 1, "events: %v", evs)
			if loss < 0.9 {
				require.Equal(t, KindDrop, opened[0].Kind)
			}
			dropStart := t0 + int64(len(h))*60
			require.LessOrEqual(t, opened[0].DetectedAt.Unix()-dropStart, int64(90*60))
			require.InDelta(t, loss, opened[0].Missing/opened[0].Expected, 0.25)
		})
	}
}

// A sparse stream (one event a minute, 5-minute buckets) loses 60 %: found
// within 2.5 hours. (When the drop CUSUMs moved once per 30-minute block, a
// threshold counting buckets made this wait 3 hours; they now move per bucket
// and count buckets, their evidence corrected for correlated buckets.)
func TestSparseDropWithinHours(t *testing.T) {
	const n = 8 * 288
	h := diurnal(4, n, 5*time.Minute, 1, 0.05)
	after := diurnal(5, 96, 5*time.Minute, 0.4, 0.05)
	evs := replay(t, Config{Bucket: 5 * time.Minute}, []series{{"acme", "edr", append(h, after...)}})
	opened := of(evs, TypeGapOpened)
	require.Len(t, opened, 1, "events: %v", evs)
	require.Equal(t, KindDrop, opened[0].Kind)
	require.LessOrEqual(t, opened[0].DetectedAt.Unix()-(t0+n*300), int64(150*60))
}

func TestFlappingStreamGivesOneGap(t *testing.T) {
	counts := diurnal(6, 2*1440, time.Minute, 100, 0.05)
	for i := range 60 { // an hour: 2 minutes off, 2 on
		if i%4 < 2 {
			counts = append(counts, 0)
		} else {
			counts = append(counts, 100)
		}
	}
	counts = append(counts, diurnal(7, 120, time.Minute, 100, 0.05)...)
	evs := replay(t, Config{Bucket: time.Minute}, []series{{"acme", "dns", counts}})
	require.Len(t, of(evs, TypeGapOpened), 1, "events: %v", evs)
	resolved := of(evs, TypeGapResolved)
	require.Len(t, resolved, 1)
	require.Equal(t, of(evs, TypeGapOpened)[0].GapID, resolved[0].GapID)
}

func TestResolve(t *testing.T) {
	h := diurnal(8, 1440, time.Minute, 50, 0.05)
	counts := append(append(append([]uint64{}, h...), make([]uint64, 20)...), diurnal(9, 60, time.Minute, 50, 0.05)...)
	evs := replay(t, Config{Bucket: time.Minute}, []series{{"acme", "audit", counts}})
	opened, resolved := of(evs, TypeGapOpened), of(evs, TypeGapResolved)
	require.Len(t, opened, 1)
	require.Len(t, resolved, 1)
	r := resolved[0]
	back := t0 + int64(len(h)+20)*60
	require.Equal(t, back, r.EndedAt.Unix(), "ended_at is the start of the first bucket back")
	require.Equal(t, t0+int64(len(h))*60, r.StartedAt.Unix())
	require.Equal(t, opened[0].DetectedAt, r.DetectedAt)
	require.Zero(t, r.Observed)
	require.InDelta(t, 20*50, r.Expected, 400)
	require.Greater(t, r.Time, r.EndedAt)
	require.Greater(t, r.Seq, opened[0].Seq)

	var ce map[string]any
	require.NoError(t, json.Unmarshal(r.AppendLine(nil), &ce))
	data := ce["data"].(map[string]any)
	require.Equal(t, r.EndedAt.Format(time.RFC3339), data["ended_at"])
	var ceOpened map[string]any
	require.NoError(t, json.Unmarshal(opened[0].AppendLine(nil), &ceOpened))
	require.NotContains(t, ceOpened["data"], "ended_at")
}

func TestUpdates(t *testing.T) {
	h := diurnal(8, 1440, time.Minute, 50, 0.05)
	counts := append(append([]uint64{}, h...), make([]uint64, 5*60)...)
	evs := replay(t, Config{Bucket: time.Minute}, []series{{"acme", "audit", counts}})
	upd := of(evs, TypeGapUpdated)
	// Opened within a minute, then updates 15, 30, 60, 120 minutes later (at
	// the bucket end on or after); 4h is beyond the end.
	require.Len(t, upd, 4)
	det := of(evs, TypeGapOpened)[0].DetectedAt
	for i, d := range []time.Duration{15, 45, 105, 225} {
		due := det.Add(d * time.Minute)
		require.Equal(t, due.Add(time.Minute-time.Second).Truncate(time.Minute), upd[i].Time)
		require.Equal(t, uint32(i+1), upd[i].Seq)
	}
	require.Greater(t, upd[3].Missing, upd[0].Missing)
}

func TestCloudEvent(t *testing.T) {
	ev := Event{
		Type: TypeGapOpened, Time: time.Unix(t0+120, 0), Origin: DefaultEventSource,
		GapID: GapID("acme corp", "fire/wall", KindSilence, time.Unix(t0, 0)), Tenant: "acme corp", Source: "fire/wall",
		Kind: KindSilence, StartedAt: time.Unix(t0, 0), DetectedAt: time.Unix(t0+120, 0),
		Expected: 600.4, Observed: 0, Missing: 600.4, BucketSeconds: 60,
	}
	line := string(ev.AppendLine(nil))
	want := `{"specversion":"1.0","type":"io.gapwatch.gap.opened","source":"/gapwatch/detect","id":"` + ev.ID() +
		`","time":"2025-03-03T00:02:00Z","subject":"acme%20corp/fire%2Fwall","datacontenttype":"application/json",` +
		`"data":{"gap_id":"` + ev.GapID + `","tenant":"acme corp","source":"fire/wall","kind":"silence",` +
		`"started_at":"2025-03-03T00:00:00Z","detected_at":"2025-03-03T00:02:00Z","expected_events":600,` +
		`"observed_events":0,"missing_events":600,"sequence":0,"bucket_seconds":60}}` + "\n"
	require.Equal(t, want, line)
	require.Len(t, ev.ID(), 32)
	other := ev
	other.Type = TypeGapUpdated
	require.NotEqual(t, ev.ID(), other.ID())
}

// many returns n streams of mixed volume, some with silences and drops.
func many(n, buckets int) []series {
	var ss []series
	for i := range n {
		rate := math.Pow(10, float64(i%6)-2) // 0.01 .. 1000 per minute
		c := diurnal(uint64(100+i), buckets, time.Minute, rate, 0.1)
		if i%3 == 0 {
			for j := buckets * 2 / 3; j < buckets*2/3+60; j++ {
				c[j] = 0
			}
		}
		if i%3 == 1 {
			for j := buckets / 2; j < buckets; j++ {
				c[j] /= 4
			}
		}
		ss = append(ss, series{fmt.Sprint("tenant-", i%7), fmt.Sprint("source-", i), c})
	}
	return ss
}

func render(evs []Event) []byte {
	var b []byte
	for _, ev := range evs {
		b = ev.AppendLine(b)
	}
	return b
}

func TestDeterministicAndSharded(t *testing.T) {
	ss := many(60, 2*1440)
	one := render(replay(t, Config{Bucket: time.Minute, Workers: 1}, ss))
	require.NotEmpty(t, one)
	again := render(replay(t, Config{Bucket: time.Minute, Workers: 1}, ss))
	require.Equal(t, string(one), string(again), "same input, same bytes")
	four := render(replay(t, Config{Bucket: time.Minute, Workers: 4}, ss))
	require.Equal(t, string(one), string(four), "workers do not change the events")

	// Two instances, shard 0 and 1 of 2: together exactly the single instance's events.
	a := replay(t, Config{Bucket: time.Minute, Shard: 0, Shards: 2}, ss)
	b := replay(t, Config{Bucket: time.Minute, Shard: 1, Shards: 2}, ss)
	require.NotEmpty(t, a)
	require.NotEmpty(t, b)
	both := append(a, b...)
	sortEvents(both)
	require.Equal(t, string(one), string(render(both)))

	// Advancing by an hour at a time gives the same events as minute by minute.
	e, err := New(Config{Bucket: time.Minute})
	require.NoError(t, err)
	var chunked []Event
	for start := 0; start < 2*1440; start += 60 {
		var cs []storage.Count
		for _, s := range ss {
			for i := start; i < start+60; i++ {
				if s.counts[i] > 0 {
					cs = append(cs, storage.Count{Tenant: s.tenant, Source: s.source, Bucket: t0 + int64(i)*60, Events: s.counts[i]})
				}
			}
		}
		chunked = append(chunked, e.Advance(time.Unix(t0+int64(start+60)*60, 0), cs).Events...)
	}
	sortEvents(chunked)
	require.Equal(t, string(one), string(render(chunked)))

	// With retirement after an hour, the quiet streams (0.01 per minute) and
	// those silent for an hour are retired and come back, again and again:
	// still the same events and retirements however the calls are split.
	cfg := Config{Bucket: time.Minute, RetireAfter: time.Hour}
	ev1, ret1 := replayRetired(t, cfg, ss, 1)
	require.NotEmpty(t, ret1)
	retiredGaps := 0
	for _, ev := range ev1 {
		if ev.Retired {
			retiredGaps++
		}
	}
	require.NotZero(t, retiredGaps, "some open gaps are closed by retirement")
	for _, chunk := range []int{13, 60, 2 * 1440} {
		ev, ret := replayRetired(t, cfg, ss, chunk)
		require.Equal(t, string(render(ev1)), string(render(ev)), "chunk %d", chunk)
		require.Equal(t, ret1, ret, "chunk %d", chunk)
	}
}

func sortEvents(evs []Event) {
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0 && eventLess(&evs[j], &evs[j-1]) < 0; j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
}

func TestGapIsNotLearned(t *testing.T) {
	e, err := New(Config{Bucket: time.Minute, Workers: 1})
	require.NoError(t, err)
	h := diurnal(11, 3*1440, time.Minute, 20, 0.05)
	replayOn(t, e, []series{{"acme", "vpn", h}}, 0)
	st := e.shards[0].streams[streamKey{"acme", "vpn"}]
	before := st.base
	// Six hours of silence: a gap opens and the baseline stays as it was.
	counts := append(append([]uint64{}, h...), make([]uint64, 6*60)...)
	evs := replayOn(t, e, []series{{"acme", "vpn", counts}}, len(h))
	require.Len(t, of(evs, TypeGapOpened), 1)
	require.NotNil(t, st.vol)
	// Only the buckets before the gap opened (at most a couple) may have been learned.
	require.LessOrEqual(t, st.base.n-before.n, uint16(2))
	require.InEpsilon(t, before.level, st.base.level, 0.05)
}

func TestWatermarkBoundsJudgement(t *testing.T) {
	e, err := New(Config{Bucket: time.Minute})
	require.NoError(t, err)
	for i := range 10 {
		e.Advance(time.Unix(t0+int64(i+1)*60, 0), []storage.Count{{Tenant: "a", Source: "b", Bucket: t0 + int64(i)*60, Events: 500}})
	}
	// The watermark stays inside bucket 10: bucket 10 is not judged, no gap yet.
	res := e.Advance(time.Unix(t0+10*60+59, 0), nil)
	require.Empty(t, res.Events)
	// Once the watermark passes the empty bucket 10, the silence is found.
	res = e.Advance(time.Unix(t0+11*60, 0), nil)
	require.Len(t, res.Events, 1)
	// A count for an already judged bucket is ignored, and said so.
	res = e.Advance(time.Unix(t0+11*60, 0), []storage.Count{{Tenant: "a", Source: "b", Bucket: t0 + 10*60, Events: 500}})
	require.Equal(t, 1, res.Ignored)
}

// TestLate: two hours of late events open one late gap, whose detection
// bucket's explanation shows the lateness test over its threshold (and no
// bucket before it does).
func TestLate(t *testing.T) {
	e, err := New(Config{Bucket: time.Minute, Workers: 1})
	require.NoError(t, err)
	e.Explain("acme", "cloudtrail")
	var evs []Event
	var ex []Explanation
	for i := range 2 * 1440 {
		var hist [storage.LatenessBuckets]uint64
		hist[0], hist[1] = 80, 20 // normally within 10 s
		if i >= 1440+600 && i < 1440+720 {
			hist = [storage.LatenessBuckets]uint64{5, 5, 0, 0, 90} // two hours of events 1-5 minutes late
		}
		c := storage.Count{Tenant: "acme", Source: "cloudtrail", Bucket: t0 + int64(i)*60, Events: 100, Lateness: hist[:]}
		res := e.Advance(time.Unix(t0+int64(i+1)*60, 0), []storage.Count{c})
		evs = append(evs, res.Events...)
		ex = append(ex, res.Explanations...)
	}
	opened := of(evs, TypeGapOpened)
	require.Len(t, opened, 1, "events: %v", evs)
	require.Equal(t, KindLate, opened[0].Kind)
	at := ex[(opened[0].DetectedAt.Unix()-60-t0)/60]
	require.Equal(t, "late", at.State)
	require.Greater(t, at.Late, at.LateThreshold, "%+v", at)
	for _, x := range ex {
		if x.Bucket.Before(at.Bucket) {
			require.LessOrEqual(t, x.Late, x.LateThreshold, "%+v", x)
		}
	}
	start := t0 + int64(1440+600)*60
	require.Equal(t, start, opened[0].StartedAt.Unix())
	require.LessOrEqual(t, opened[0].DetectedAt.Unix()-start, int64(5*60))
	resolved := of(evs, TypeGapResolved)
	require.Len(t, resolved, 1)
	require.Equal(t, start+120*60, resolved[0].EndedAt.Unix())
	require.InDelta(t, 120*90, resolved[0].Missing, 1)
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{Bucket: 1500 * time.Millisecond},
		{Shard: 2, Shards: 2},
		{DropFraction: 1.5},
		{Bucket: time.Minute, Phase: time.Minute},
		{Workers: -1},
		{RetireAfter: 30 * time.Minute},
		{RetireAfter: time.Hour, ResolveAfter: time.Hour},
	} {
		_, err := New(c)
		require.Error(t, err, "%+v", c)
	}
	_, err := New(Config{})
	require.NoError(t, err)
}

func TestBacktestEqualsEngine(t *testing.T) {
	ss := many(12, 1440)
	var csv bytes.Buffer
	csv.WriteString("time,tenant,source,count\n")
	for i := range 1440 {
		for _, s := range ss {
			if s.counts[i] > 0 {
				fmt.Fprintf(&csv, "%s,%s,%s,%d\n", time.Unix(t0+int64(i)*60, 0).UTC().Format(time.RFC3339), s.tenant, s.source, s.counts[i])
			}
		}
	}
	counts, err := ReadCountsCSV(bytes.NewReader(csv.Bytes()))
	require.NoError(t, err)
	step, phase, err := InferStep(counts)
	require.NoError(t, err)
	require.Equal(t, time.Minute, step)
	require.Zero(t, phase)
	var got []byte
	require.NoError(t, Backtest(counts, Config{}, func(ev Event) error { got = ev.AppendLine(got); return nil }))
	want := render(replay(t, Config{Bucket: time.Minute}, ss))
	require.NotEmpty(t, want)
	require.Equal(t, string(want), string(got))
}

func TestReadCountsCSVErrors(t *testing.T) {
	for _, in := range []string{
		"",
		"t,tenant,source,count\n",
		"time,tenant,source,count\nyesterday,a,b,1\n",
		"time,tenant,source,count\n2025-03-03T00:00:00Z,a,b,-1\n",
		"time,tenant,source,count\n2025-03-03T00:00:00Z,,b,1\n",
		"time,tenant,source,count\n2025-03-03T00:00:00Z,a,b\n",
	} {
		_, err := ReadCountsCSV(bytes.NewReader([]byte(in)))
		require.ErrorIs(t, err, ErrBadInput, in)
	}
	_, _, err := InferStep([]storage.Count{{Tenant: "a", Source: "b", Bucket: 0}, {Tenant: "a", Source: "b", Bucket: 60}, {Tenant: "a", Source: "b", Bucket: 150}})
	require.ErrorIs(t, err, ErrBadInput)
}
