package detect

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/simulate"
	"github.com/gapwatch/gapwatch/storage"
)

// A drop CUSUM's excursion ends at a bucket the profile expects to be idle
// (under idleShare of the stream's deseasonalised rate). The run correction
// reads serial correlation in clock time, so across an idle night it takes
// an evening's deficit and the next day's as nearly independent, while a
// day's weather or schedule moves both: Bikeshare's casual riders had drops
// that opened at 20:00 and crossed the next afternoon. A stream whose day
// swells and tails off between 06:00 and 22:00 (nights at 0.05 events a
// bucket) runs at 75 % from 18:00: it enters the night in an excursion (at
// about 11 of the 13.3 needed), and at its first idle bucket both CUSUMs are
// at rest.
func TestDropExcursionEndsAtAnIdleBucket(t *testing.T) {
	e, err := New(Config{Bucket: 5 * time.Minute, Workers: 1})
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(1, 2))
	evening := rhythmMonday + 22*86400 + 18*3600
	var st *stream
	inExcursion, checked := false, false
	for b := rhythmMonday; b < evening+6*3600; b += 300 {
		s := float64((b-rhythmMonday)%86400) / 3600
		rate := 0.05 // the night: under a fiftieth of the deseasonalised rate
		if s >= 6 && s < 22 {
			rate = math.Max(0.05, 20*math.Pow(math.Sin(math.Pi*(s-6)/16), 2))
			if b >= evening {
				rate *= 0.75
			}
		}
		var cs []storage.Count
		if n := simulate.GammaPoisson(r, rate, 0.02); n > 0 {
			cs = []storage.Count{{Tenant: "t", Source: "s", Bucket: b, Events: n}}
		}
		if st != nil && b >= evening {
			mu, _ := e.model.expect(&st.base, b)
			if mu < idleShare*float64(st.base.level) && inExcursion {
				e.Advance(time.Unix(b+300, 0), cs)
				require.Equal(t, [2]cusum{}, st.cus, "the first idle bucket, %s", time.Unix(b, 0).UTC())
				checked = true
				break
			}
		}
		e.Advance(time.Unix(b+300, 0), cs)
		st = e.shards[0].streams[streamKey{"t", "s"}]
		if b >= evening {
			inExcursion = st.cus[0].v > 0 || st.cus[1].v > 0
		}
	}
	require.True(t, checked, "the evening ended in an excursion")
}
