package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
// an hour's margin either side; outages whose margins touch are one window.
// A fall to a fifth (a burst's end) is not.
func TestLogOutages(t *testing.T) {
	const w = 300
	series := make([]uint64, 60)
	for i := range series {
		series[i] = 1000
	}
	series[20] = 90  // outage
	series[30] = 50  // another, within the first one's margin
	series[50] = 200 // a fifth: not an outage
	require.Equal(t, [][2]int64{{8 * w, 43 * w}}, logOutages(series, 0, w))
	series[30] = 1000
	require.Equal(t, [][2]int64{{8 * w, 33 * w}}, logOutages(series, 0, w))
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
	require.NotEmpty(t, ds.windows)
}
