package detect

import "math"

// The hour-of-week correction. The separable profile level·hour[h]·day[d]
// gives every day the same hourly shape, scaled; real traffic often has a
// shape of its own at some hours of some days (a city's taxis at weekend
// nights, security logs busy at office hours on weekdays and flat at
// weekends), and there a loss can look like normal. Each hour of the week
// keeps the log of what it carried over the separable prediction (hours seen
// whole; the counts as learned: winsorised, an hour with a gap left out,
// imputeWeekHour), averaged over weeks like the daily profile (plainly at
// first, then with a half-life of 3 weeks). It is learned from the second
// complete week on, against the separable prediction with the daily profile
// of the weeks before (the first week has none: its ratios would hold the
// day's level too), used from the fourth on (once two weeks of ratios can be
// compared) as a step per hour, and shrunk James–Stein-like by how much of its spread
// is noise (shrinkWeekHours). One byte per hour: 168 bytes per stream.

// weekStep is the correction's quantisation: log ratios in steps of 1/32,
// ±4 (1/55 to 55 times the separable prediction).
const weekStep = 32

// weekHours returns the correction factor for a bucket: its hour's, as a
// step (it was learned as the ratio of hour sums to the separable
// prediction, which already follows the day's rhythm within the hour).
func (m *model) weekHours(b *baseline, bucket int64) float64 {
	return math.Exp(float64(b.howS) * float64(b.how[weekHour(bucket)]) / weekStep)
}

// weekHour is the hour of the week of a bucket start (Monday 00:00 UTC = 0).
func weekHour(bucket int64) int16 {
	return int16(weekSecond(bucket) / 3600)
}

// The current hour's flags (baseline.howFlags).
const (
	howHolePrev uint8 = 1 << iota // the hour's last occurrence had a hole
	howRecur                      // it has one again: a recurring hole (imputeWeekHour)
	howImputed                    // it has a bucket not learned that does not recur
)

// accountWeekHour adds a bucket's learned count x and its separable
// prediction sep to the current hour's sums, folding the previous hour into
// the correction first when bucket starts another one.
func (m *model) accountWeekHour(b *baseline, bucket int64, x, sep float64) {
	m.enterWeekHour(b, weekHour(bucket))
	b.addWeekHour(x, sep)
}

// addWeekHour adds a count x and its separable prediction sep to the
// current hour's sums.
func (b *baseline) addWeekHour(x, sep float64) {
	b.howN++
	b.howObs += float32(x)
	b.howExp += float32(sep)
}

// enterWeekHour makes wh the current hour of the week, if it is not: the
// hour before is folded into the correction, and wh's last occurrence is
// read from holes into howFlags (its bit then records this occurrence). An
// hour with a bucket not learned is not folded (a gap tells nothing of the
// hour), unless its hole recurred (imputeWeekHour): then it replaces the
// correction, as the rhythm rule replaces the profiles' slots, and tells
// nothing of the hours' noise.
func (m *model) enterWeekHour(b *baseline, wh int16) {
	if wh == b.howSlot {
		return
	}
	recur := b.howFlags&howRecur != 0
	if float64(b.howN) >= 0.9*m.perHour && b.howSlot >= 0 && b.howSlot < 168 && b.weeks >= 1 &&
		(recur || b.howFlags&howImputed == 0) {
		old := float64(b.how[b.howSlot]) / weekStep
		r := math.Log((float64(b.howObs) + 1) / (float64(b.howExp) + 1))
		if b.weeks >= 2 && !recur {
			// The innovation: how far a week's hour lands from what
			// the weeks before averaged (shrinkWeekHours).
			if b.howK < math.MaxUint16 {
				b.howK++
			}
			b.howV += float32(math.Max(1/float64(b.howK), 1.0/336) * ((r-old)*(r-old) - float64(b.howV)))
		}
		w := math.Max(1/float64(b.weeks), m.dayRate)
		if recur {
			w = 1
		}
		b.how[b.howSlot] = quantWeek(old + w*(r-old))
	}
	b.howSlot, b.howN, b.howObs, b.howExp = wh, 0, 0, 0
	b.howFlags = 0
	if m.hadHole(b, wh) {
		b.howFlags = howHolePrev
	}
	b.setHole(wh, false)
}

// imputeWeekHour accounts a bucket that is not learned (x its count, sep
// its separable prediction) to the correction's hour: the hour is then not
// folded (enterWeekHour), so a gap leaves its correction where it was.
// Before 2026-12-05 such buckets entered by their expectation, which carries
// the shrunk correction, and each alarm pulled the hour's correction
// towards 0. Unless the hole recurs, as in the rhythm rule (impute): the
// same hour a week before had a bucket not learned, and the stream was
// learned normally since. Then the bucket enters with its count (capped at
// the unshrunk correction's prediction: a backlog is not rhythm), and the
// hour replaces its correction. A source whose Saturdays end hours before
// its other days is alerted on its first Saturdays, then expected once the
// correction is in use (from the fourth week), where the profiles' slots
// (an hour of every day, a whole weekday) could not say so.
func (m *model) imputeWeekHour(b *baseline, bucket int64, x, sep float64) {
	wh := weekHour(bucket)
	m.enterWeekHour(b, wh)
	v := sep * math.Exp(float64(b.how[wh])/weekStep)
	if b.howFlags&howHolePrev != 0 && b.learned >= bucket-6*86400 {
		v = math.Min(x, v)
		b.howFlags |= howRecur
	} else {
		b.howFlags |= howImputed
	}
	b.addWeekHour(v, sep)
	b.setHole(wh, true)
}

// holeYesterday reports whether the same hour of the day before had a bucket
// not learned.
func (m *model) holeYesterday(b *baseline, bucket int64) bool {
	return m.hadHole(b, (weekHour(bucket)+168-24)%168)
}

// hadHole reports whether hour of the week wh's last occurrence had a
// bucket not learned, as far as the bucket width lets the bits say
// (slotsRecur).
func (m *model) hadHole(b *baseline, wh int16) bool {
	return m.slotsRecur && b.holes[wh/8]&(1<<(wh%8)) != 0
}

// setHole records whether hour of the week wh had a bucket not learned.
func (b *baseline) setHole(wh int16, hole bool) {
	if hole {
		b.holes[wh/8] |= 1 << (wh % 8)
	} else {
		b.holes[wh/8] &^= 1 << (wh % 8)
	}
}

// shrinkWeekHours ends a complete week: the correction's shrinkage is set,
// James–Stein-like, from how much of the corrections' spread their noise
// explains, s = 1 − noise/spread (0 when noise explains it all: a stream
// without a weekly shape of its own, or too noisy to tell). The noise is
// learned, not modelled: an hour's log ratio lands from the average of the
// n weeks before it by about its own variance σ² times (1 + 1/n) (the
// innovations, howV, over the last two weeks of hours), and the average of
// n_eff weeks varies by σ²/n_eff. Bursty series (whose hours wander by more
// than their counts' dispersion says) are shrunk accordingly.
func (m *model) shrinkWeekHours(b *baseline) {
	var spread float64
	for _, v := range b.how {
		l := float64(v) / weekStep
		spread += l * l / 168
	}
	r := m.dayRate
	nEff := math.Min(float64(b.weeks)-1, (2-r)/r)
	if spread <= 0 || nEff < 2 || b.howK == 0 {
		// Until two weeks' ratios can be compared, nothing is known of
		// their noise.
		b.howS = 0
		return
	}
	sigma2 := float64(b.howV) / (1 + 1/(nEff-1))
	b.howS = float32(math.Max(0, 1-sigma2/nEff/spread))
}

func quantWeek(l float64) int8 {
	return int8(math.Round(math.Min(math.Max(l, -4), 127.0/weekStep) * weekStep))
}
