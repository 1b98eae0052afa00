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

// weekHourFixture is a baseline in its fourth week whose hour of the week
// wh (Saturday 21:00) has a correction of −2, fed with buckets of 5
// minutes; hour returns the first bucket of that hour in week w.
func weekHourFixture() (m model, b baseline, wh int16, hour func(w int64) int64) {
	m, b = newModel(300), newBaseline()
	b.level, b.days, b.weeks = 20, 21, 3
	hour = func(w int64) int64 { return rhythmMonday + w*7*86400 + 5*86400 + 21*3600 }
	wh = weekHour(hour(0))
	b.how[wh] = -2 * weekStep
	b.howK, b.howV = 1000, 0.1
	return m, b, wh, hour
}

// feedHour accounts the twelve buckets of the hour from `from`, each count
// x, imputed (not learned) or learned, then enters the next hour, which
// folds it.
func feedHour(m *model, b *baseline, from int64, x float64, imputed bool) {
	for i := range int64(12) {
		bk := from + i*300
		mu, a := m.expect(b, bk)
		if imputed {
			m.impute(b, bk, x, mu)
		} else {
			m.learn(b, bk, x, mu, a)
		}
	}
	m.enterWeekHour(b, weekHour(from+3600))
}

// separableHour is the separable prediction of the twelve buckets of the
// hour from `from`.
func separableHour(m *model, b *baseline, from int64) float64 {
	var sep float64
	for i := range int64(12) {
		shf, sdf, _ := m.separable(b, from+i*300, 1)
		sep += float64(b.level) * shf * sdf
	}
	return sep
}

// A gap leaves the hour's correction where it was, whatever the hour
// expects (its sums' +1 smoothing would pull a sparse hour towards 0), and
// tells nothing of the hours' noise; learned counts do move it.
func TestGapLeavesTheWeekHourCorrection(t *testing.T) {
	for _, level := range []float32{0.5, 20} {
		m, b, wh, hour := weekHourFixture()
		b.level = level
		k, v := b.howK, b.howV
		feedHour(&m, &b, hour(3), 0, true)
		require.Equal(t, int8(-2*weekStep), b.how[wh], "level %v: a gap moved the correction", level)
		require.Equal(t, k, b.howK)
		require.Equal(t, v, b.howV)

		m, b, wh, hour = weekHourFixture()
		b.level = level
		feedHour(&m, &b, hour(3), float64(level), false)
		require.Greater(t, b.how[wh], int8(-2*weekStep), "level %v: the hour's own counts at the level", level)
	}
}

// A hole in the hour that the same hour had a week before replaces its
// correction by what the hour carried (its count, capped at the unshrunk
// correction's prediction), without counting it as noise. A hole a week
// before with no hour learned since (one long outage) does not recur.
func TestRecurringHoleReplacesTheWeekHourCorrection(t *testing.T) {
	m, b, wh, hour := weekHourFixture()
	b.setHole(wh, true)
	b.learned = hour(3) - 3600
	k, v := b.howK, b.howV
	sep := separableHour(&m, &b, hour(3))
	feedHour(&m, &b, hour(3), 0, true)
	require.Equal(t, quantWeek(math.Log(1/(sep+1))), b.how[wh], "the hour's correction is this week's empty hour")
	require.Equal(t, k, b.howK, "a rhythm found is not noise")
	require.Equal(t, v, b.howV)
	require.True(t, m.hadHole(&b, wh), "this week's hole is recorded for the next")

	// A backlog in the hole (100 times the level) is capped: the
	// correction does not rise above what it was.
	m, b, wh, hour = weekHourFixture()
	b.setHole(wh, true)
	b.learned = hour(3) - 3600
	sep = separableHour(&m, &b, hour(3))
	feedHour(&m, &b, hour(3), 100*float64(b.level), true)
	require.Equal(t, quantWeek(math.Log((math.Exp(-2)*sep+1)/(sep+1))), b.how[wh])

	m, b, wh, hour = weekHourFixture()
	b.setHole(wh, true)
	b.learned = hour(3) - 7*86400
	feedHour(&m, &b, hour(3), 0, true)
	require.Equal(t, int8(-2*weekStep), b.how[wh], "no hour learned since the hole a week before")
}

// The counts of buckets learned saturate instead of wrapping: at 1-minute
// buckets the uint16 fills in 45 days, and a wrap to 0 made the level 0
// and the short-term rate −Inf.
func TestLearnedCountsSaturate(t *testing.T) {
	m, b := newModel(60), newBaseline()
	for i := range int64(70_000) {
		bk := rhythmMonday + i*60
		mu, a := m.expect(&b, bk)
		m.learn(&b, bk, 5, mu, a)
		m.learnBlock(&b, 150, 150, 0.1)
	}
	require.Equal(t, uint16(math.MaxUint16), b.n)
	require.Equal(t, uint16(math.MaxUint16), b.nb)
	require.InEpsilon(t, 5, float64(b.level), 0.05)
	require.InEpsilon(t, 5, float64(b.short), 0.05)
}

// The holes' bits are read only where every day has buckets starting in
// the same hours: with 5-hour buckets a day's hours are not the day
// before's, and an hour's bit could be weeks old.
func TestHoleBitsNeedRecurringSlots(t *testing.T) {
	for _, w := range []int64{60, 420, 3600, 7200, 86400} {
		require.True(t, newModel(w).slotsRecur, "width %d", w)
	}
	m, b := newModel(5*3600), newBaseline()
	require.False(t, m.slotsRecur)
	for i := range b.holes {
		b.holes[i] = 0xff
	}
	require.False(t, m.holeYesterday(&b, rhythmMonday+86400))
	m.enterWeekHour(&b, 30)
	require.Zero(t, b.howFlags&howHolePrev)
}
