package detect

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/simulate"
)

// securityLogs is the rate of a security-log source with a weekly shape the
// separable profile cannot hold: weekdays busy at office hours (08:00–18:00)
// and quiet at night, weekends flat all day at twice a weekday night.
func securityLogs(b int64) float64 {
	if weekday(b) >= 5 {
		return 40
	}
	if h := hourOf(b); h >= 8 && h < 18 {
		return 200
	}
	return 20
}

// A 70 % loss on a Saturday night of such a source: the separable profile
// expects the weekday night shape scaled down to the weekend's day total
// (about 17 where 40 come), so the 12 left look like two thirds of normal.
// With the hour-of-week correction (learned from the first weeks) the night
// is expected at its own rate and the loss is found; the weekends around it
// raise nothing.
func TestWeekendNightLossWithAWeeklyShape(t *testing.T) {
	lossFrom := rhythmMonday + (4*7+5)*86400 // Saturday of week 5, 00:00
	lossTo := lossFrom + 6*3600
	opened := runRhythm(t, 6*7, func(b int64) float64 {
		r := securityLogs(b)
		if b >= lossFrom && b < lossTo {
			r *= 0.3
		}
		return r
	})
	found := false
	for _, ev := range opened {
		if ev.StartedAt.Unix() < rhythmMonday+14*86400 {
			continue // the first two weeks: the weekly shape is still learned
		}
		at := ev.DetectedAt.Unix()
		if at >= lossFrom && at <= lossTo+3600 {
			found = true
			continue
		}
		require.Failf(t, "false alarm", "%+v", ev)
	}
	require.True(t, found, "the Saturday night loss was not found: %+v", opened)
}

// The correction is shrunk by its learned week-to-week noise: a stream whose
// weekly shape is separable (a daily rhythm, a weekend dip) but whose hours
// wander keeps next to none of it; the security-log shape keeps most of it.
func TestWeekHoursShrinkage(t *testing.T) {
	shrink := func(rate func(b int64) float64, a float64) float64 {
		m := newModel(300)
		b := newBaseline()
		r := rand.New(rand.NewPCG(7, 8))
		drift := 0.0
		for i := range int64(6 * 7 * 288) {
			bk := rhythmMonday + i*300
			drift = 0.95*drift + 0.3*math.Sqrt(1-0.95*0.95)*r.NormFloat64()
			x := float64(simulate.GammaPoisson(r, rate(bk)*math.Exp(drift), a))
			mu, da := m.expect(&b, bk)
			m.learn(&b, bk, x, mu, da)
		}
		return float64(b.howS)
	}
	separable := func(b int64) float64 {
		r := 50 + 40*math.Cos(2*math.Pi*float64(hourOf(b)-14)/24)
		if weekday(b) >= 5 {
			r *= 0.4
		}
		return r
	}
	require.Less(t, shrink(separable, 0.3), 0.3, "a separable shape with wandering hours")
	require.Greater(t, shrink(securityLogs, 0.02), 0.7, "office hours on weekdays, flat weekends")
}
