package detect

import "math"

// rankState is the burst-robust drop test: a CUSUM of how often a stream's
// buckets fall below a low quantile of their own count/expectation ratio.
//
// The NB CUSUMs weigh a bucket's count against the learned two-sided spread;
// on a bursty series the bursts make the spread (and the run correction)
// large, and a 70 % thinning sits inside it. Bursts do not move a low
// quantile: per stream, q tracks the rankLevel quantile of r = count /
// expectation (stochastic approximation in log space, from every judged
// bucket outside an open gap, suspicious ones included, so the low tail is
// not censored), and a bucket is "low" when its count is at most q times its
// expectation (and at most rankCeil times). Under a loss of half or more
// most buckets are low (rankAlt).
//
// How low buckets follow each other is learned, as the probability of a low
// bucket given the low run before it (rankClass: none, 1, 2, 3–4, 5–8, 9–16,
// 17 or more), taken as non-decreasing in the run (a rate that drifts low
// stays low). A low run is learned when it ends, so a loss is weighed
// against the runs before it, not against itself. A first-order chain (low
// or not) was too little: a slow drift makes low runs far longer than its
// lag-1 probability says, and most of its alarms were such runs. A stream
// whose low spells last (NAB Twitter AAPL: P(low | 17 low) 0.9) makes a
// long run weak evidence, which is honest. The CUSUM of the log-likelihood
// ratio "rankAlt" vs the learned probabilities crosses h under the null at
// most once per e^h buckets (the ratio is a martingale under the learned
// law, as for the NB CUSUMs), so it takes a third of the drop test's budget.
type rankState struct {
	cus cusum
	q   float32              // the rankLevel quantile of count/expectation
	p   [rankClasses]float32 // P(low | the low run before, by rankClass)
	k   [rankClasses]uint8   // buckets that informed each class, saturating
	n   uint16               // buckets learned, saturating
	run uint8                // low buckets running before the next one, saturating
}

const (
	// rankLevel is the quantile of count/expectation below which a bucket
	// is low. A deep one: at 25 %, 10 % and 5 % NAB Twitter's own slow low
	// spells (hours at half the expectation, unlabelled) were alarms
	// (0.66, 0.20 and 0.14 per stream-week); a loss of half or more still
	// takes most buckets below it.
	rankLevel = 0.02
	// rankAlt is the probability that a bucket is low under the alternative
	// (a loss of at least half of the events).
	rankAlt = 0.9
	// rankCeil is the highest share of its expectation a low bucket may
	// hold, whatever the quantile: under a loss of half, a regular stream's
	// buckets hold about half of theirs, so nearly all stay below 0.6 (as
	// rankAlt says), while a regular stream's 2 % quantile (NYC taxi: 0.85)
	// made a quiet night at three quarters of its profile a low run.
	rankCeil = 0.6
	// rankMinMu is the least expectation of a bucket the test judges (and
	// learns): below it whole counts make the quantile coarse, and a loss of
	// half is not "nearly always low" (Poisson noise alone reaches q·mu).
	rankMinMu = 10
	// rankPriorN is the weight, in buckets, of a class's prior (rankPrior).
	rankPriorN = 10
	// rankClasses is the number of classes of the low run (rankClass).
	rankClasses = 7
	// rankLearnDays is how long the test learns (buckets of at least
	// rankMinMu expected events, from the hourly profile on) before it
	// judges: three days of a stream's low runs, its nights and evenings
	// among them, beside the classes' prior. It was a week: on
	// benchdetect's young streams (each real series' first two weeks) three
	// days find 55, 46 and 57 drops where a week found 51, 44 and 56 (seeds
	// 1–3; NAB Twitter 24, 13, 20 against 20, 11, 19), with the same false
	// alarms; after two weeks nothing changes, and cold start only by one
	// alarm over 600 synthetic streams (seed 3).
	rankLearnDays = 3
)

// rankClass is the class of a low run of run buckets.
func rankClass(run uint8) int {
	switch {
	case run <= 2:
		return int(run)
	case run <= 4:
		return 3
	case run <= 8:
		return 4
	case run <= 16:
		return 5
	}
	return 6
}

// rankPrior is class i's prior probability of a low bucket: the quantile's
// level after a bucket that was not low, a coin after a low run (a run is
// not evidence before the stream has shown how long its low spells last).
func rankPrior(i int) float32 {
	if i == 0 {
		return rankLevel
	}
	return 0.5
}

// rankRates are the rank test's learning rates, from the bucket width.
type rankRates struct {
	q     float64 // step of log q per bucket (after the first ones): a day's memory
	chain float64 // EWMA weight of the classes' probabilities (half-life 2 days)
	learn uint16  // buckets learned before the test judges (rankLearnDays)
}

func newRankRates(perDay float64) rankRates {
	return rankRates{
		q:     1 / perDay,
		chain: halfLifeRate(2 * perDay),
		learn: uint16(min(rankLearnDays*perDay, math.MaxUint16)),
	}
}

// reset ends the test's excursion (a gap is open: its buckets are the gap's).
func (r *rankState) reset() {
	r.cus = cusum{}
	r.run = 0
}

// judge accounts bucket from with x events, expectation mu and judged mean mt
// (shard.judged: below mu in a possible weekend of a young stream, so that a
// weekend dip is not a drop, and 0 within windDown of an idle period): it adds the bucket's log-likelihood ratio to
// the CUSUM once the test has learned, learns the bucket into the quantile
// (and, when it ends a low run, the run into the classes), and returns the
// CUSUM's value.
func (r *rankState) judge(rates *rankRates, from int64, x, mu, mt float64) float64 {
	if mu < rankMinMu {
		return float64(r.cus.v)
	}
	if r.n == 0 {
		r.q = 0.5
		for i := range r.p {
			r.p[i] = rankPrior(i)
		}
	}
	q := float64(r.q)
	low := math.Min(q, rankCeil) // a bucket is low below low·expectation
	c := rankClass(r.run)
	p1 := 0.0
	for i := 0; i <= c; i++ {
		p1 = math.Max(p1, float64(r.p[i]))
	}
	p1 = math.Min(math.Max(p1, 0.01), 0.99)
	// Counts are whole: the comparison is continuity-corrected.
	if r.n >= rates.learn {
		// The alternative is never less low than the null: where a stream's
		// runs go on more often than rankAlt, a bucket is no evidence.
		alt := math.Max(rankAlt, p1)
		l := math.Log((1 - alt) / (1 - p1))
		if x+0.5 <= low*mt {
			l = math.Log(alt / p1)
		}
		r.cus.add(l, from, mu, x)
	}
	// The quantile learns every bucket; a low run's class probabilities are
	// learned when the run ends: its buckets are judged against what earlier
	// runs taught, not against themselves (a loss's own run would otherwise
	// teach that long runs go on, while it is being weighed). A run cut
	// short by an open gap is never learned.
	under := 0.0
	if x+0.5 <= q*mu {
		under = 1
	}
	step := math.Max(2/float64(r.n+2), rates.q)
	r.q = float32(math.Min(math.Max(q*math.Exp(step*(rankLevel-under)), 1e-3), 10))
	if x+0.5 > low*mu {
		r.learnRun(rates)
		r.learn(rates, c, 0)
		r.run = 0
	} else if r.run < math.MaxUint8 {
		r.run++
	}
	if r.n < math.MaxUint16 {
		r.n++
	}
	return float64(r.cus.v)
}

// learnRun learns the low run before a bucket that was not low: each of its
// buckets (up to the first 255) was low after the run before it.
func (r *rankState) learnRun(rates *rankRates) {
	for i := range r.run {
		r.learn(rates, rankClass(i), 1)
	}
}

// learn moves class c's probability of a low bucket by one bucket that was
// low (b = 1) or not (b = 0).
func (r *rankState) learn(rates *rankRates, c int, b float64) {
	w := math.Max(1/(float64(r.k[c])+1+rankPriorN), rates.chain)
	r.p[c] += float32(w * (b - float64(r.p[c])))
	if r.k[c] < math.MaxUint8 {
		r.k[c]++
	}
}
