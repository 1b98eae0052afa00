package detect

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/simulate"
	"github.com/gapwatch/gapwatch/storage"
)

// TestStopLateInABucketIsASilence: a busy stream that stops 40 % into a
// bucket leaves it part full, and the drop test finds that bucket first; once
// the buckets after it are empty enough to be a silence, the gap is one
// (gap.updated with kind silence at once, and resolved as one). A stream that
// keeps a third of its events stays a drop.
func TestStopLateInABucketIsASilence(t *testing.T) {
	const w, hist, rate = 60, 3 * 1440, 300 // three days: the drop test runs on the hourly profile
	r := rand.New(rand.NewPCG(7, 7))
	var counts []storage.Count
	for i := range hist + 60 {
		for _, src := range []string{"stops", "thins"} {
			n := simulate.Poisson(r, rate)
			switch {
			case src == "stops" && i == hist:
				n = simulate.Poisson(r, 0.4*rate)
			case src == "stops" && i > hist && i < hist+30:
				n = 0
			case src == "thins" && i >= hist && i < hist+30:
				n = simulate.Poisson(r, rate/3)
			}
			counts = append(counts, storage.Count{Tenant: "t", Source: src, Bucket: t0 + int64(i)*w, Events: n})
		}
	}
	e, err := New(Config{})
	require.NoError(t, err)
	evs := e.Advance(time.Unix(t0+int64(hist+60)*w, 0), counts).Events
	kinds := map[string][]string{} // per source: type/kind in order
	var opened, silenced time.Time
	for _, ev := range evs {
		kinds[ev.Source] = append(kinds[ev.Source], ev.Type+"/"+string(ev.Kind))
		if ev.Source == "stops" && ev.Type == TypeGapOpened {
			opened = ev.DetectedAt
		}
		if ev.Source == "stops" && ev.Kind == KindSilence && silenced.IsZero() {
			silenced = ev.Time
		}
	}
	stops := kinds["stops"]
	require.NotEmpty(t, stops, "the stop is found")
	require.Equal(t, TypeGapOpened+"/drop", stops[0], "the part-full bucket is found first, by the drop test: %v", stops)
	require.Equal(t, TypeGapUpdated+"/silence", stops[1], "then it is a silence at once: %v", stops)
	require.Equal(t, TypeGapResolved+"/silence", stops[len(stops)-1], "%v", stops)
	require.LessOrEqual(t, silenced.Sub(opened), 2*w*time.Second, "a silence within two buckets of the open")
	for _, k := range kinds["thins"] {
		require.Contains(t, k, "/drop", "a stream keeping a third of its events stays a drop: %v", kinds["thins"])
	}
	require.NotEmpty(t, kinds["thins"], "the thinning is found")
}
