package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/detect"
)

// Only rows at which every series recorded nothing, three or more in a row
// with no row missing between them, are the collector's outage: one series'
// quiet run, two shared empty rows, or empty rows either side of a missing
// one, are not.
func TestCollectorOutages(t *testing.T) {
	const w = 300
	ts := []int64{0, w, 2 * w, 3 * w, 4 * w, 5 * w, 6 * w, 7 * w, 8 * w, 9 * w, 10 * w}
	busy := []uint64{5, 0, 0, 0, 0, 7, 0, 0, 6, 0, 0}
	quiet := []uint64{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3}
	require.Equal(t, [][2]int64{{0, 6 * w}}, collectorOutages([][]int64{ts, ts}, [][]uint64{busy, quiet}))
	require.Empty(t, collectorOutages([][]int64{ts}, [][]uint64{{1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 1}}))
	require.Equal(t, [][2]int64{{0, 6 * w}}, collectorOutages([][]int64{ts, ts}, [][]uint64{quiet, busy}), "the second series sends")
	gappy := []int64{0, w, 2 * w, 4 * w, 5 * w}
	require.Empty(t, collectorOutages([][]int64{gappy}, [][]uint64{{1, 0, 0, 0, 1}}), "a missing row splits the run")
}

// Bikeshare's rain and snow hours (ISLP's labels or the UCI file's codes)
// are labelled windows from the hour before to rainAfter hours after; dry
// and misty hours are not.
func TestBikeshareRainWindows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Bikeshare.csv")
	rows := "\"day\",\"hr\",\"weathersit\",\"casual\",\"registered\"\n"
	for hr, w := range []string{"clear", "clear", "clear", "light rain/snow", "heavy rain/snow", "cloudy/misty", "clear", "3", "clear", "clear"} {
		rows += fmt.Sprintf("1,%d,%q,5,20\n", hr, w)
	}
	for day := 2; day <= 365; day++ {
		for hr := range 24 {
			rows += fmt.Sprintf("%d,%d,\"clear\",5,20\n", day, hr)
		}
	}
	require.NoError(t, os.WriteFile(path, []byte(rows), 0o600))
	sets, err := loadBikeshare(path, 0, 1)
	require.NoError(t, err)
	start := time.Date(2011, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	h := func(n int64) int64 { return start + n*3600 }
	require.Equal(t, [][2]int64{{h(9), h(25)}, {h(2), h(9)}, {h(6), h(12)}}, sets[0].windows,
		"day 1's absent hours 10–23, then rain at 3–4 and at 7")
}

// A bucket under a tenth of the hour before it is the log's own outage, with
// an hour's margin either side; outages whose margins meet are one window,
// others are not. A fall to 0.15 (the audience after a burst) is none.
func TestLogOutages(t *testing.T) {
	const w = 300
	steady := func() []uint64 {
		s := make([]uint64, 120)
		for i := range s {
			s[i] = 1000
		}
		return s
	}
	series := steady()
	series[20] = 90  // outage
	series[30] = 50  // another, within the first one's margin
	series[50] = 150 // 0.15: not an outage
	require.Equal(t, [][2]int64{{8 * w, 43 * w}}, logOutages(series, 0, w))
	series[30] = 1000
	require.Equal(t, [][2]int64{{8 * w, 33 * w}}, logOutages(series, 0, w))

	series = steady()
	series[20], series[45], series[90] = 0, 0, 0 // 45's margin starts where 20's ends; 90 is apart
	require.Equal(t, [][2]int64{{8 * w, 58 * w}, {78 * w, 103 * w}}, logOutages(series, 0, w))
}

// The committed World Cup series loads whole: the requests the logs'
// documentation counts, from the site's first bucket to its last.
func TestWorldCupSeries(t *testing.T) {
	sets, err := loadWorldCup("testdata/worldcup98-requests-5m.csv.gz", 2, 1)
	require.NoError(t, err)
	require.Len(t, sets, 1)
	ds := sets[0]
	var sum uint64
	for _, v := range ds.trials[0].counts {
		sum += v
	}
	require.Equal(t, uint64(1_352_804_107), sum+ds.trials[0].inj.missing)
	require.Equal(t, time.Date(1998, 4, 30, 21, 30, 0, 0, time.UTC).Unix(), ds.start)
	require.Equal(t, time.Date(1998, 7, 26, 21, 55, 0, 0, time.UTC).Unix(), ds.start+int64(ds.n-1)*ds.width)
	at := func(mo time.Month, d, h, m int) int64 { return time.Date(1998, mo, d, h, m, 0, 0, time.UTC).Unix() }
	require.Equal(t, [][2]int64{
		{at(5, 5, 20, 0), at(5, 5, 22, 15)}, {at(5, 5, 22, 25), at(5, 6, 0, 30)},
		{at(5, 17, 5, 5), at(5, 17, 7, 40)}, {at(5, 18, 7, 5), at(5, 18, 13, 0)},
	}, ds.windows, "the log's outages of 5, 17 and 18 May")
}

// Scoring: an alarm within its injection is found; one in the warm-up, or
// inside a labelled window, is not false (the latter counted apart); any
// other is a false alarm. Watched time leaves the windows out.
func TestScoreLabelledWindows(t *testing.T) {
	const w = 3600
	ds := &dataset{name: "d", group: "g", width: w, start: 0, warm: 24, n: 24 * 15,
		windows: [][2]int64{{100 * w, 110 * w}}}
	tr := &trial{inj: injection{kind: detect.KindDrop, start: 200, end: 210}}
	alerts := []alert{
		{started: 10 * w, detected: 12 * w, kind: detect.KindDrop},   // warm-up
		{started: 100 * w, detected: 105 * w, kind: detect.KindDrop}, // labelled
		{started: 150 * w, detected: 151 * w, kind: detect.KindSilence},
		{started: 200 * w, detected: 203 * w, kind: detect.KindDrop}, // found
	}
	sc := newScore()
	ds.scoreInto(sc, tr, alerts)
	require.Equal(t, 1, sc.found[detect.KindDrop])
	require.Equal(t, 1, sc.falseAlarms)
	require.Equal(t, 1, sc.falseByKind[detect.KindSilence])
	require.Equal(t, 1, sc.labelled)
	require.InDelta(t, float64(24*15-24-10)/(7*24), sc.streamWeeks, 1e-9)
}

// A young copy keeps a real series' first two weeks as they were before any
// injection, with the same labels, and injects only from its third day; the
// synthetic set has no series and no young copy.
func TestYoungSets(t *testing.T) {
	const w = 3600
	series := make([]uint64, 30*24)
	for i := range series {
		series[i] = uint64(100 + i%24)
	}
	real := &dataset{name: "r", group: "g", width: w, start: 7 * 86400, warm: 14 * 24, n: len(series),
		windows: [][2]int64{{8 * 86400, 8*86400 + w}}}
	real.addTrials(series, 6, rand.New(rand.NewPCG(1, 2)))
	syn := &dataset{name: "synthetic", group: "synthetic", width: w, n: 10, trials: []*trial{{}}}
	young := youngSets([]*dataset{real, syn}, 1)
	require.Len(t, young, 1)
	y := young[0]
	require.Equal(t, 14*24, y.n)
	require.Equal(t, 2*24, y.warm)
	require.Equal(t, real.windows, y.windows)
	require.Equal(t, series[:14*24], y.series)
	require.Len(t, y.trials, 6)
	for _, tr := range y.trials {
		require.Len(t, tr.counts, 14*24)
		require.GreaterOrEqual(t, tr.inj.start, 2*24, tr.name)
		require.Less(t, tr.inj.end, 14*24, tr.name)
		require.False(t, y.overlapsWindow(tr.inj.start, tr.inj.end+2), tr.name)
		for i, v := range tr.counts {
			if i < tr.inj.start || i >= tr.inj.end {
				require.Equal(t, series[i], v, "%s: bucket %d outside the injection", tr.name, i)
			}
		}
	}
}

// A heavy copy replays a real series with one 70 % loss of 3½–9 hours per
// trial, after the warm-up and outside the labelled windows, counting what
// it took; the rest of the series is untouched, and the synthetic set has
// no heavy copy.
func TestHeavySets(t *testing.T) {
	const w = 300
	series := make([]uint64, 30*288)
	for i := range series {
		series[i] = uint64(200 + i%288)
	}
	real := &dataset{name: "r", group: "g", width: w, start: 7 * 86400, warm: 14 * 288, n: len(series),
		windows: [][2]int64{{7*86400 + 20*86400, 7*86400 + 22*86400}}}
	real.addTrials(series, 40, rand.New(rand.NewPCG(1, 2)))
	syn := &dataset{name: "synthetic", group: "synthetic", width: w, n: 10, trials: []*trial{{}}}
	heavy := heavySets([]*dataset{real, syn}, 1)
	require.Len(t, heavy, 1)
	h := heavy[0]
	require.Equal(t, real.windows, h.windows)
	require.Len(t, h.trials, 40)
	for _, tr := range h.trials {
		inj := tr.inj
		require.Equal(t, detect.KindDrop, inj.kind)
		require.Equal(t, heavyLoss, inj.loss)
		require.GreaterOrEqual(t, inj.start, h.warm, tr.name)
		require.GreaterOrEqual(t, (inj.end-inj.start)*w, int(heavyMin), tr.name)
		require.LessOrEqual(t, (inj.end-inj.start)*w, int(heavyMax)+w, tr.name)
		require.False(t, h.overlapsWindow(inj.start, inj.end+2), tr.name)
		var held, kept uint64
		for i, v := range tr.counts {
			if i < inj.start || i >= inj.end {
				require.Equal(t, series[i], v, "%s: bucket %d outside the loss", tr.name, i)
				continue
			}
			held += series[i]
			kept += v
		}
		require.Equal(t, held, inj.held, tr.name)
		require.Equal(t, held-kept, inj.missing, tr.name)
		require.InDelta(t, heavyLoss, float64(inj.missing)/float64(held), 0.05, tr.name)
	}
}

// A collector loss takes its share of at least two of a tenant's sources,
// inside [start, end) only, counts what it took, and stays out of an
// affected source's labelled windows; the synthetic tenants' scoring finds
// it from an alarm on an affected source, not on another one.
func TestCollectorLoss(t *testing.T) {
	ts := syntheticTenants(6, 3, 1)
	for _, tt := range ts.tenants {
		hit := 0
		for _, h := range tt.hit {
			if h {
				hit++
			}
		}
		require.GreaterOrEqual(t, hit, 2, tt.name)
		require.True(t, tt.share >= 0.5 && tt.share <= 0.9, tt.name)
		require.True(t, tt.start >= ts.warm && tt.end > tt.start && tt.end <= ts.n, tt.name)
	}
	// Outside [start, end) and on sources it did not hit, the counts are
	// untouched; inside, it took exactly `missing`; it never overlaps an
	// affected source's labelled window (source 1's first 60 buckets).
	const width = 300
	set := &tenantSet{width: width, warm: 20, n: 200}
	var tt *tenantTrial
	for seed := range uint64(30) {
		src := [][]uint64{make([]uint64, 200), make([]uint64, 200), make([]uint64, 200)}
		for i := range src {
			for j := range src[i] {
				src[i][j] = 100
			}
		}
		tt = &tenantTrial{sources: src, windows: [][][2]int64{nil, {{0, 60 * width}}, nil}}
		set.collectorLoss(rand.New(rand.NewPCG(seed, 2)), tt)
		require.False(t, tt.hit[1] && tt.start < 60, "seed %d: an affected source's labelled window was hit", seed)
		for i, c := range tt.sources {
			var took uint64
			for j, v := range c {
				if j < tt.start || j >= tt.end || !tt.hit[i] {
					require.Equal(t, uint64(100), v, "seed %d source %d bucket %d", seed, i, j)
				}
				took += 100 - v
			}
			require.Equal(t, tt.missing[i], took, "seed %d source %d", seed, i)
		}
	}
	tt.alerts = make([][]alert, 3)
	set.tenants = []*tenantTrial{tt}
	other := 0
	for i, h := range tt.hit {
		if !h {
			other = i
		}
	}
	at := int64(tt.start+1) * width
	out := int64(max(tt.start+1, 61)) * width // after source 1's window
	tt.alerts[other] = []alert{{started: out, detected: out, kind: detect.KindDrop}}
	sc := set.score(func(tt *tenantTrial) [][]alert { return tt.alerts })
	if !tt.hit[other] {
		require.Equal(t, 0, sc.found, "an alarm on a source the loss did not touch")
		require.Equal(t, 1, sc.falseAlarms)
	}
	first := 0
	for i, h := range tt.hit {
		if h {
			first = i
			break
		}
	}
	tt.alerts[first] = []alert{{started: at, detected: at + width, kind: detect.KindDrop}}
	sc = set.score(func(tt *tenantTrial) [][]alert { return tt.alerts })
	require.Equal(t, 1, sc.found)
	require.Equal(t, []float64{float64(2*width) / 60}, sc.ttd)
}
