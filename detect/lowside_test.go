package detect

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// The bursty mid-volume stream of burstyMidStream (60 events an hour, its
// rate wandering per half hour and bursting to 3–6 times) loses 50 % or 70 %
// of its events for 4 or 8 hours, 20 seeds each. Learned from both sides,
// the bursts make its block dispersion and correlation large and a long
// loss look like a slow swing: 34 of the 80 found within the loss. From the
// low side (learnBlock) 41 are. (With a 90 % alternative for the second
// drop CUSUM, before deepDrop: 28 and 37.)
func TestBlockStatisticsFromTheLowSide(t *testing.T) {
	lossFrom := rhythmMonday + (24*288+14*12)*300
	found := func(lowSide bool) int {
		n := 0
		for _, keep := range []float64{0.3, 0.5} {
			for _, hours := range []int64{4, 8} {
				for seed := range uint64(20) {
					for _, ev := range burstyMidLoss(t, seed, hours*12, keep, func(e *Engine) { e.model.lowSide = lowSide }) {
						if ev.DetectedAt.Unix() > lossFrom && ev.DetectedAt.Unix() <= lossFrom+hours*3600 {
							n++
							break
						}
					}
				}
			}
		}
		return n
	}
	require.GreaterOrEqual(t, found(true), 39, "losses found from the low side, of 80")
	require.LessOrEqual(t, found(false), 36, "losses found from both sides, of 80 (the comparison this test makes)")
}

// blockRho reads the lag-1 correlation of a stream's block residuals from
// their low parts: fed Gaussian AR(1) residuals (blocks of 100 expected
// events, sd 20) it finds the AR(1)'s correlation, and upward bursts of 4
// blocks at 3 sd, which a two-sided estimate reads as a correlation near its
// cap, do not move it. Averaged over the last 4000 of 6000 blocks (the
// estimate is an EWMA of half-life 96 blocks).
func TestBlockRhoFromTheLowParts(t *testing.T) {
	m := newModel(300)
	for _, rho := range []float64{0.3, 0.5, 0.7} {
		for _, bursts := range []bool{false, true} {
			r := rand.New(rand.NewPCG(uint64(rho*10), 7))
			b := newBaseline()
			z, burst, sum, n := 0.0, 0, 0.0, 0
			for i := range 6000 {
				z = rho*z + math.Sqrt(1-rho*rho)*r.NormFloat64()
				up := 0.0
				if bursts {
					if burst == 0 && r.IntN(20) == 0 {
						burst = 4
					}
					if burst > 0 {
						up, burst = 3, burst-1
					}
				}
				m.learnBlock(&b, 100+20*(z+up), 100, 0.02/6)
				if i >= 2000 {
					sum += m.blockRho(&b)
					n++
				}
			}
			require.InDelta(t, rho, sum/float64(n), 0.06, "rho %.1f, bursts %v", rho, bursts)
		}
	}
}
