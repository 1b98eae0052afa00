package detect

import "math"

// The silence test's run probability rests on the NB (gamma-Poisson) model,
// whose gamma gives a rate near zero a probability that falls only
// polynomially with the mean: with a bucket dispersion a learned two-sided
// (bursts and clustered arrivals make it large), an empty bucket of mean mu
// has probability (1+a·mu)^(−1/a), far more than many streams ever show. So
// each stream also learns from its own emptiness:
//
//   - zeroCal is log(a0/a) ≤ 0, a0 the dispersion under which the buckets
//     judged predict as many empty buckets as were seen, tracked by stochastic
//     approximation (calibrateZeros). It starts at 0 (a0 = a) and moves down
//     only by the empty buckets the model predicted and the stream did not
//     show (zeroEta per predicted empty): a stream that was never expected to
//     show one is not moved.
//   - zeroSpell ≥ 0 gives part of that back when the stream's quiet comes in
//     spells: empty 30-minute blocks seen more often than the calibrated run
//     dispersion predicts (calibrateSpells). The bucket calibration speaks of
//     single buckets; this keeps a stream whose empties cluster (night lulls,
//     a mostly idle source) needing the longer run it needed before.
//
// The run dispersion of a run of empty buckets (runLogP's sum term) is
// multiplied by e^(zeroCal+zeroSpell) ≤ 1, its variance-components shape kept.
// The product of the buckets' P(0) keeps the bucket dispersion: a run is
// never judged less probable than independent buckets of the two-sided
// dispersion make it, so the calibration only takes back what the shared
// (correlated) part of the run dispersion added; with the product calibrated
// too, NAB Twitter CRM's real 30–40-minute lulls (17–30 expected events) became
// false silences. A run started by a near-empty bucket, and the "suspicious,
// not learned" rule, keep the bucket dispersion, so learning and the drop
// test are unchanged. Both are updated at bucket ends only, after the
// bucket's decisions (never by Peek), so early-silence slots judge with the
// state the bucket test has, and a replay takes the same decisions.

const (
	// zeroEta is the calibration's step per empty bucket seen (in log a0),
	// and per empty bucket predicted but not seen.
	zeroEta = 0.05
	// spellEta is the step back per empty block seen, and per empty block
	// predicted but not seen.
	spellEta = 0.5
	// zeroCalMin bounds the calibration: a0 ≥ a·e^−zeroCalMin.
	zeroCalMin = 8
)

// silenceScale is the factor (≤ 1) on the run dispersion of a run of empty
// buckets.
func silenceScale(st *stream) float64 {
	return math.Exp(math.Min(0, float64(st.zeroCal)+float64(st.zeroSpell)))
}

// calibrateZeros accounts a judged bucket (x events, expectation mu, bucket
// dispersion a) to the stream's empty-bucket calibration: log a0 moves up by
// zeroEta·(1 − p) for an empty bucket and down by zeroEta·p otherwise, p =
// P(0 | mu, a0), so it settles where the predicted and seen empties agree.
// A bucket far above its expectation (beyond the learning's winsorisation) is
// a prediction gone wrong, not evidence about empties, and is left out.
func calibrateZeros(st *stream, x, mu, a float64) {
	if mu <= 0 || a < poissonA || x > mu+4*math.Sqrt(mu+a*mu*mu)+3 {
		return
	}
	p := math.Exp(logP0(mu, a*math.Exp(float64(st.zeroCal))))
	z := 0.0
	if x == 0 {
		z = 1
	}
	q := float64(st.zeroCal) + zeroEta*(z-p)
	st.zeroCal = float32(math.Min(math.Max(q, -zeroCalMin), 0))
}

// calibrateSpells accounts a complete block judged without an open gap (obs
// events, exp expected) to zeroSpell: up by spellEta·(1 − p) for an empty
// block, down by spellEta·p otherwise, p = P(block empty) under the
// calibrated run dispersion of a block, kept within [0, −zeroCal].
func (s *shard) calibrateSpells(st *stream, obs, exp float64) {
	if exp <= 0 || st.zeroCal >= 0 {
		st.zeroSpell = 0
		return
	}
	L := float64(s.e.blockLen)
	p := math.Exp(logP0(exp, s.e.model.runDispersion(&st.base, L, L)*silenceScale(st)))
	z := 0.0
	if obs == 0 {
		z = 1
	}
	u := float64(st.zeroSpell) + spellEta*(z-p)
	st.zeroSpell = float32(math.Min(math.Max(u, 0), -float64(st.zeroCal)))
}
