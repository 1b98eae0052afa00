package detect

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The bursty mid-volume stream of burstyMidStream (60 events an hour, its
// rate wandering per half hour and bursting to 3–6 times) loses 50 % or 70 %
// of its events for 4 or 8 hours, 20 seeds each. Learned from both sides,
// the bursts make its block dispersion and correlation large and a long
// loss look like a slow swing: 28 of the 80 found within the loss. From the
// low side (learnBlock) 37 are; a 70 % loss for 8 hours 19 of 20 times.
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
	require.GreaterOrEqual(t, found(true), 35, "losses found from the low side, of 80")
	require.LessOrEqual(t, found(false), 30, "losses found from both sides, of 80 (the comparison this test makes)")
}
