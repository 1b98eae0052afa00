package detect

import "math"

// baseline is one stream's learned expectation of its count per bucket:
//
//	mu(t) = level · hour[hour of day(t)] · day[day of week(t)]
//
// The hourly profile (24 factors of mean 1) is the average shape of complete
// days: each finished day's hourly sums, divided by their mean, are averaged
// into it (plainly for the first days, then with a half-life of 3 days); the
// daily profile (7 factors) likewise from complete weeks (half-life 3 weeks).
// A profile is used once two complete periods are folded in (two days, two
// weeks), shrunk towards 1 by the number of events that informed it. The level
// is an EWMA (half-life 12 h) of the deseasonalised counts. Until the hourly
// profile is in use the prediction is a short-term rate instead (cold start),
// an EWMA over about an hour whose first values are a plain mean, so a stream
// seen for a few buckets is already protected.
//
// From two complete weeks on, mu is also multiplied by an hour-of-week
// correction (weekhours.go).
//
// Around mu the counts are negative binomial with a dispersion a estimated from
// the residuals of the prediction in use (so model error widens the band),
// shrunk towards a prior while the evidence is thin.
//
// Updates are robust: values are winsorised at mu − 4 sd and mu + 4 sd + 3 before they enter any
// average, and the caller feeds the expectation instead of the count for
// buckets that are anomalous or inside a gap (impute), so a gap is never
// learned as normal. About 500 bytes with the hour-of-week correction
// (weekhours.go).
type baseline struct {
	level float32 // deseasonalised events per bucket (half-life 12 h)
	short float32 // short-term events per bucket (cold start)
	// learned is the last bucket that ended an hour of buckets all learned.
	learned int64
	n       uint16 // buckets learned, saturating
	nb      uint16 // blocks learned, saturating
	hour    [24]float32
	day     [7]float32
	// The current day's and week's sums per slot, folded into the profiles
	// when the period is over (if it was seen whole).
	hourAcc     [24]float32
	dayAcc      [7]float32
	curDay      int32 // day number of hourAcc; its week's (weekOf) is dayAcc's
	dayN, weekN uint16
	recurH      uint32  // hour slots of the current day with a recurring hole (see impute)
	dirtyD      uint8   // day slots of the current week with a bucket not learned
	prevD       uint8   // dirtyD of the previous week
	recurD      uint8   // day slots of the current week with a recurring hole
	wkN         uint8   // buckets that informed wkL, up to model.weekendLearn
	steadyN     uint16  // buckets learned since the last one that was not
	days, weeks uint16  // complete periods folded in
	howK        uint16  // hours that informed howV (the hour-of-week correction, below)
	v, m, q     float32 // moments of the dispersion: E[(x−mu)²], E[mu], E[mu²]
	// The same over blocks (sums over the engine's block), for the drop test.
	bv, bm, bq float32
	// Serial correlation of consecutive blocks' standardised residuals
	// (drift, slow bursts): EWMAs of z·z_prev and z², and the last z; on
	// the low side (model.lowSide) of their low parts min(z, 0), with bzm
	// the EWMA of min(z, 0).
	bzz, bzp, bzLast, bzm float32
	// Hour-of-week correction (see weekHours): per hour of the week (Monday
	// 00:00 UTC = 0), the log of what that hour carries over the separable
	// prediction, in steps of 1/weekStep, with the current hour's sums.
	how            [168]int8
	howObs, howExp float32
	howSlot, howN  int16
	howS           float32 // its shrinkage (shrinkWeekHours)
	howV           float32 // the hours' innovation variance (shrinkWeekHours)
	// holes has a bit per hour of the week (as how): its last occurrence
	// had a bucket not learned. The current hour's bit is this
	// occurrence's so far; the one before it is in howFlags. The rhythm
	// rules read it (impute, imputeWeekHour).
	holes    [168 / 8]uint8
	howFlags uint8 // howHolePrev, howRecur, howImputed: of the current hour
	// wkL is what a young stream's weekends (their core) carried of their
	// expectation: the mean log ratio (learnWeekend), in steps of 1/wkStep.
	wkL int16
}

// model holds what all baselines of an engine share: the bucket geometry and
// the learning rates derived from it.
type model struct {
	width     int64 // bucket width, seconds
	perHour   float64
	perDay    float64
	perWeek   float64
	shortRate float64 // EWMA weight of the short-term rate
	levelRate float64
	hourRate  float64 // weight of a new day in the hourly profile
	dayRate   float64 // weight of a new week in the daily profile
	dispRate  float64
	blockRate float64
	priorA    float64 // dispersion prior
	priorN    float64 // its weight, in buckets
	// weekendFloor is Config.WeekendFloor (judged).
	weekendFloor float64
	// weekendLearn is how many buckets of a weekend's core a young stream
	// learns (learnWeekend) before its tests may use them (judgedWeekend,
	// from the end of that weekend on): half a day's, at most 255.
	weekendLearn uint8
	// lowSide: block statistics are learned from the low side (learnBlock):
	// a block sums several buckets (derived from the width; a field so that
	// a test can compare both ways).
	lowSide bool
	// slotsRecur: every day has buckets starting in the same hours (the
	// width is at most an hour, or divides a day), so an hour's bit in
	// baseline.holes is the day before's (the week before's), not one
	// left from weeks ago.
	slotsRecur bool
	rank       rankRates // the rank drop test's (rank.go)
}

func newModel(width int64) model {
	perHour := 3600 / float64(width)
	perDay := 86400 / float64(width)
	return model{
		width:        width,
		perHour:      perHour,
		perDay:       perDay,
		perWeek:      7 * perDay,
		shortRate:    halfLifeRate(perHour),    // short-term rate: half-life 1 h
		levelRate:    halfLifeRate(perDay / 2), // level: half-life 12 h
		hourRate:     halfLifeRate(3),          // hourly profile: half-life 3 days
		dayRate:      halfLifeRate(3),          // daily profile: half-life 3 weeks
		dispRate:     halfLifeRate(2 * perDay), // dispersion: half-life 2 days
		blockRate:    halfLifeRate(96),         // block dispersion: half-life 96 blocks (2 days of 30 min)
		priorA:       0.25,                     // sd of the rate 50 % of its mean until learned otherwise
		priorN:       30,
		rank:         newRankRates(perDay),
		weekendLearn: uint8(min(math.MaxUint8, math.Max(1, math.Round(perDay/2)))),
		lowSide:      blockBuckets(width) > 1,
		slotsRecur:   width <= 3600 || 86400%width == 0,
	}
}

func newBaseline() baseline {
	var b baseline
	for i := range b.hour {
		b.hour[i] = 1
	}
	for i := range b.day {
		b.day[i] = 1
	}
	b.curDay = math.MinInt32
	b.howSlot = -1
	return b
}

// weekOf returns the week number (weeks start on Monday) of a day number.
func weekOf(day int64) int64 { return floorDiv(day+3, 7) }

// slots returns the day number, week number (weeks start on Monday),
// hour of day and day of week (Monday = 0) of a bucket start, UTC.
func slots(bucket int64) (day, week int64, h, d int) {
	day = floorDiv(bucket, 86400)
	h = int((bucket - day*86400) / 3600)
	dm := day + 3 // days since Monday 1969-12-29
	week = weekOf(day)
	d = int(dm - week*7)
	return day, week, h, d
}

// factors returns the seasonal factors in use for a bucket. A factor is shrunk
// towards 1 by the number of events that informed it (prior of 10 events), so
// a sparse stream's noisy profile does not move its expectation much; the
// shrinkage is geometric (f^s), so that an hour in which the stream is idle
// (a factor near 0) keeps expecting next to nothing.
//
// The hourly factor is interpolated between the means of the two nearest
// hours (each hour's mean taken at its middle), geometrically: a smooth
// daily rhythm is then followed within the hour instead of in steps, which
// would leave errors of one sign for half an hour at a time, and a stream
// that switches off at an hour boundary is not expected to carry half its
// rate into the idle hour.
func (m *model) factors(b *baseline, bucket int64) (hf, df float64, seasonal bool) {
	hf, df, seasonal = m.separable(b, bucket, 2)
	if seasonal && b.weeks >= 2 {
		df *= m.weekHours(b, bucket)
	}
	return hf, df, seasonal
}

// separable returns the hourly and daily factors of the separable profile
// (without the hour-of-week correction), the daily profile once weeks
// complete weeks informed it (2 for the prediction; 1 for the correction's
// learning, which starts in the second complete week).
func (m *model) separable(b *baseline, bucket int64, weeks uint16) (hf, df float64, seasonal bool) {
	hf, df = 1, 1
	_, _, _, d := slots(bucket)
	if b.days >= 2 {
		seasonal = true
		hf = m.hourFactor(b, bucket)
		if b.weeks >= weeks {
			info := float64(b.level) * m.perDay * math.Min(float64(b.weeks), 4)
			s := info / (info + 10)
			df = math.Exp(s * math.Log(float64(b.day[d])))
		}
	}
	return hf, df, seasonal
}

// hourFactor is the hourly profile's factor for a bucket, shrunk by the
// events that informed it and interpolated between the two nearest hours.
func (m *model) hourFactor(b *baseline, bucket int64) float64 {
	info := float64(b.level) * m.perHour * math.Min(float64(b.days), 4)
	s := info / (info + 10)
	u := float64(floorMod(bucket, 86400)+m.width/2)/3600 - 0.5
	h0 := math.Floor(u)
	frac := u - h0
	i0, i1 := int(floorMod(int64(h0), 24)), int(floorMod(int64(h0)+1, 24))
	lh := (1-frac)*math.Log(float64(b.hour[i0])) + frac*math.Log(float64(b.hour[i1]))
	return math.Exp(s * lh)
}

// expect returns the expected count and the dispersion for a bucket.
func (m *model) expect(b *baseline, bucket int64) (mu, a float64) {
	if hf, df, ok := m.factors(b, bucket); ok {
		mu = float64(b.level) * hf * df
	} else {
		mu = float64(b.short)
	}
	return mu, m.dispersion(b)
}

// DefaultWeekendFloor is how much quieter than the days learned a weekend may
// be while a stream's daily profile is not in use (its first two weeks): a
// weekday→weekend step is then possible, not evidence of a loss (weekends of
// security logs commonly carry a quarter to a half of a weekday's events).
// Config.WeekendFloor sets it; 1 judges weekends as weekdays.
const DefaultWeekendFloor = 0.25

// Weekends as the calendar has them somewhere between UTC−8 and UTC+10:
// from Friday 14:00 to Monday 08:00 UTC, in seconds since Monday 00:00 UTC.
const (
	weekendFrom = 4*86400 + 14*3600
	weekendTo   = 7*86400 + 8*3600
)

// windDown is how long before its idle period (a night, a closed hour: its
// profile under idleShare of its deseasonalised rate) a stream's active
// period may end early (windingDown).
const windDown = 2 * 3600

// windingDown reports whether the stream's profile goes idle within windDown
// of bucket, looked at an hour and windDown ahead. A day of a source with
// idle hours ends at a time that varies: a schedule's last departures leave
// or are cancelled, an office empties early on a Friday. Before the idle
// period an empty run is then possible, not evidence; if the stream is down
// rather than done for the day, the next active period says so.
func (m *model) windingDown(b *baseline, bucket int64) bool {
	for ahead := int64(3600); ahead <= windDown; ahead += 3600 {
		if hf, df, ok := m.factors(b, bucket+ahead); ok && hf*df < idleShare {
			return true
		}
	}
	return false
}

// judged returns the mean that the silence and drop tests judge a bucket of
// expectation mu against: mu itself, except in a possible weekend of a stream
// whose expectation follows its hourly profile but not yet a daily one
// (two days to two weeks of history): there mu·weekendFloor, the quietest
// weekend the stream might have. Its first weekends then raise no drop and a
// silence needs the evidence of one at a quarter of the rate; a heavy loss
// (below the floor) is still found. Before two days the short-term rate
// predicts, which follows a step within hours. Expectations shown and gap
// estimates keep mu. Within windDown of the stream's idle period, 0: the
// day may have ended (windingDown).
func (m *model) judged(b *baseline, bucket int64, mu float64) float64 {
	if b.days < 2 {
		return m.coldJudged(b, bucket, mu)
	}
	if m.windingDown(b, bucket) {
		return 0
	}
	if b.weeks >= 2 || m.weekendFloor >= 1 {
		return mu
	}
	if possibleWeekend(bucket) {
		return mu * m.weekendFloor
	}
	return mu
}

// What a stream's expectation follows (Expectation.Profile).
const (
	ProfileShortTerm = "short-term" // its recent rate: the first two days
	ProfileHourly    = "hourly"     // its level and hourly profile
	ProfileWeekly    = "weekly"     // and its daily profile: from two complete weeks on
)

// How a stream's possible weekends are judged (Expectation.Weekend).
const (
	WeekendRecent  = "recent"  // against the recent rate, as any hour (ProfileShortTerm)
	WeekendLenient = "lenient" // as possibly Config.WeekendFloor of the expectation (judged)
	WeekendLearned = "learned" // against what its first weekend carried (judgedWeekend)
	WeekendProfile = "profile" // by its daily profile (ProfileWeekly)
	WeekendWeekday = "weekday" // as weekdays (Config.WeekendFloor 1)
)

// learned says what a stream's expectation follows and how its possible
// weekends are judged, from the same conditions as judged and judgedWeekend;
// weekendKnown is the stream's.
func (m *model) learned(b *baseline, weekendKnown bool) (profile, weekend string) {
	switch {
	case b.days < 2:
		return ProfileShortTerm, WeekendRecent
	case b.weeks >= 2:
		return ProfileWeekly, WeekendProfile
	case m.weekendFloor >= 1:
		return ProfileHourly, WeekendWeekday
	case weekendKnown:
		return ProfileHourly, WeekendLearned
	}
	return ProfileHourly, WeekendLenient
}

// The core of the possible weekends, Saturday 08:00 to Sunday 14:00 UTC: a
// weekend in every zone from UTC−8 to UTC+10 (learnWeekend).
const (
	weekendCoreFrom = 5*86400 + 8*3600
	weekendCoreTo   = 6*86400 + 14*3600
)

// possibleWeekend reports whether bucket starts in a possible weekend
// (weekendFrom to weekendTo).
func possibleWeekend(bucket int64) bool {
	s := weekSecond(bucket)
	return s >= weekendFrom || s+7*86400 < weekendTo
}

// weekSecond is the second of the week of a bucket start (Monday 00:00 UTC =
// 0).
func weekSecond(bucket int64) int64 { return floorMod(bucket+3*86400, 7*86400) }

// weekendMargin is how much quieter than the weekends it has seen a young
// stream's next one may be, for its tests (judgedWeekend): a weekend's
// depth moves from week to week (NAB Twitter AAPL's weekend medians were
// 0.42 to 0.69 of its weekdays' over eight weeks, the lowest 0.6 of the
// highest). At 0.75 benchdetect found 2 to 5 more young-stream drops per
// seed with the same false alarms; 0.6 is what the weeks' own spread asks.
const weekendMargin = 0.6

// wkStep is the resolution of baseline.wkL: log ratios in steps of 1/1024.
const wkStep = 1024

// judgedWeekend is the mean the silence and drop tests judge a bucket
// against, mt being judged's, for a young stream that has learned a
// weekend (stream.weekendKnown; model.judgedStream): in a possible weekend
// (mt below mu: the weekend floor) it is weekendMargin times what the
// weekends learned carried of their expectation (wkL, at most all of it),
// if that is above the floor. The floor, a quarter, took most of a fresh
// stream's weekend losses from the drop tests (a 70 % loss of a weekend
// at 0.6 of its weekdays leaves 0.18 of the expectation, under a quarter
// only by noise), and half of NAB Twitter's young-stream misses were in
// possible weekends. The silence test kept the floor until a day's early
// end stopped being evidence (windingDown): a schedule's weekend can end
// hours early (the flights' Saturday evenings), which a mean over the
// weekend does not show.
func (m *model) judgedWeekend(b *baseline, mu, mt float64) float64 {
	if mt >= mu || mt <= 0 || b.days < 2 || b.weeks >= 2 { // mt 0: the day may have ended (windingDown)
		return mt
	}
	r := math.Min(1, math.Exp(float64(b.wkL)/wkStep))
	return math.Max(mt, mu*r*weekendMargin)
}

// learnWeekend learns a young stream's bucket (x events, expectation mu),
// judged outside a gap, into wkL if it is in a weekend's core: the mean
// log ratio (x+1)/(mu+1) over its first weekendLearn such buckets, then an
// EWMA with half a day's weight. Only the core: the rest of the possible
// weekend is a weekday somewhere (a Friday afternoon of a stream in UTC
// would make its weekend look as busy as its weekdays). Every bucket
// outside a gap counts, suspicious ones too: a loss that was not found
// lowers it, which is the safe side. The stream calls it until its weekend
// is known (stream.weekendKnown): the weekends judged by wkL do not teach
// it, or a loss in one would lower the floor while it is weighed (NAB
// Twitter AMZN: a 68 % loss on its second Saturday took the floor from
// 0.49 to 0.35 of the expectation in four and a half hours).
func (m *model) learnWeekend(b *baseline, bucket int64, x, mu float64) {
	if b.days < 2 || b.weeks >= 2 || mu <= 0 {
		return
	}
	if s := weekSecond(bucket); s < weekendCoreFrom || s >= weekendCoreTo {
		return
	}
	w := 2 / m.perDay
	if b.wkN < m.weekendLearn {
		b.wkN++
		w = 1 / float64(b.wkN)
	}
	l := float64(b.wkL) / wkStep
	l += w * (math.Log((x+1)/(mu+1)) - l)
	b.wkL = int16(math.Round(math.Min(math.Max(l, -30), 30) * wkStep))
}

// coldJudged is judged before the hourly profile is in use (the short-term
// rate predicts). An hour whose slot had a bucket not learned the day before,
// with an hour learned steadily since (the rhythm rule's recurring hole, see
// impute), is not judged for silence: the day before says the stream may be
// idle then (a source idle every night pages on its first night only). From
// the first complete day on, the silence is judged against the lower of the
// short-term rate and the level times the one-day hourly profile, so an
// evening's rate is not expected through a night the day before was quiet.
// The caller keeps such buckets out of learning while they would be
// suspicious at mu (coldSuspicious).
func (m *model) coldJudged(b *baseline, bucket int64, mu float64) float64 {
	if m.holeYesterday(b, bucket) && b.learned >= bucket-86400+3600 {
		return 0
	}
	if b.days == 1 {
		return math.Min(mu, float64(b.level)*m.hourFactor(b, bucket))
	}
	return mu
}

// coldSuspicious reports whether a cold-start run of k empty buckets with exp
// expected events in all would be improbable (below p) at the expectation
// itself: such buckets are not learned even when the silence test judges
// them against less (coldJudged), so that a stream that died at an hour that
// was quiet the day before does not teach its short-term rate the death.
func coldSuspicious(k int32, exp, a, p float64) bool {
	return k > 0 && float64(k)*logP0(exp/float64(k), a) < math.Log(p)
}

// dispersion is the method-of-moments NB dispersion of the residuals,
// (E[(x−mu)²] − E[mu]) / E[mu²], shrunk towards the prior.
func (m *model) dispersion(b *baseline) float64 {
	ahat := m.priorA
	if b.q > 0 {
		ahat = math.Max(0, float64(b.v-b.m)/float64(b.q))
	}
	n := math.Min(float64(b.n), 1/m.dispRate)
	return (m.priorN*m.priorA + n*ahat) / (m.priorN + n)
}

// blockDispersion is the NB dispersion of block sums, shrunk towards the
// stream's bucket dispersion: the most a sum can keep of its terms' relative
// noise (when their errors are perfectly correlated).
func (m *model) blockDispersion(b *baseline) float64 {
	return m.shrunkBlockDispersion(b, m.dispersion(b))
}

// shrunkBlockDispersion is the learned dispersion of block sums, shrunk
// towards prior while fewer than about 16 blocks (8 hours) informed it.
func (m *model) shrunkBlockDispersion(b *baseline, prior float64) float64 {
	ahat := prior
	if b.bq > 0 {
		ahat = math.Max(0, float64(b.bv-b.bm)/float64(b.bq))
	}
	n := math.Min(float64(b.nb), 1/m.blockRate)
	const priorN = 16 // blocks: 8 hours of 30 minutes
	return (priorN*prior + n*ahat) / (priorN + n)
}

// runBlockDispersion is the block dispersion for the run-length corrections
// (runDispersion, runInflationBuckets): the learned one shrunk towards a1/L,
// the independent case, not towards a1 as blockDispersion is, and kept
// within [a1/L, a1].
func (m *model) runBlockDispersion(b *baseline, a1, blockLen float64) float64 {
	return math.Min(math.Max(m.shrunkBlockDispersion(b, a1/blockLen), a1/blockLen), a1)
}

// runDispersion is the NB dispersion of the sum of a run of k buckets (k may
// be fractional: early-silence slots), for the silence test. A variance-
// components reading of what the stream taught: the bucket dispersion a1
// splits into a part independent from bucket to bucket and a part shared by
// a block's buckets, in the shares that make the block's sums as dispersed as
// they were learned (a_blk = a1·((1−c)/L + c)); so a run of k ≤ L buckets has
// a1·((1−c)/k + c). A longer run is k/L blocks whose errors follow the
// blocks' lag-1 correlation: a_blk·runInflation(rho, k/L)/(k/L). With no
// shared part (c = 0, rho = 0) this is a1/k, and the probability of an empty
// run is the product of its buckets' (for equal means): the independent case.
func (m *model) runDispersion(b *baseline, k, blockLen float64) float64 {
	a1 := m.dispersion(b)
	k = math.Max(k, 1) // a part of one bucket shares its gamma rate: a1
	blockLen = math.Max(blockLen, 1)
	ablk := m.runBlockDispersion(b, a1, blockLen)
	if k <= blockLen {
		if a1 <= 0 || blockLen == 1 {
			return a1
		}
		c := (ablk/a1 - 1/blockLen) / (1 - 1/blockLen)
		return a1 * ((1-c)/k + c)
	}
	n := k / blockLen
	return ablk * runInflation(m.blockRho(b), n) / n
}

// runInflationBuckets is how much the summed evidence of a run of k buckets
// of mean mu each is overstated by treating the buckets as independent: the
// variance of the run's sum over k times a bucket's. Within a block it grows
// as 1 + (k−1)·c', c' the correlation of a block's buckets that makes a block
// sum's variance what was learned, r = Var(block)/(L·Var(bucket)) =
// (1 + a_blk·L·mu)/(1 + a1·mu); beyond a block, r times the AR(1) inflation of
// k/L blocks at their lag-1 correlation (runInflation). For a busy stream r
// is mostly the shared drift; for a sparse one Poisson noise dominates, r is
// near 1, and what remains is the blocks' own correlation (e.g. a profile
// that is wrong for hours).
// a1 is the stream's bucket dispersion (model.dispersion).
func (m *model) runInflationBuckets(b *baseline, a1, k, mu, blockLen float64) float64 {
	if k <= 1 {
		return 1
	}
	blockLen = math.Max(blockLen, 1)
	r := 1.0
	if blockLen > 1 {
		r = (1 + m.runBlockDispersion(b, a1, blockLen)*blockLen*mu) / (1 + a1*mu)
	}
	if k <= blockLen {
		return 1 + (k-1)*(r-1)/(blockLen-1)
	}
	return r * runInflation(m.blockRho(b), k/blockLen)
}

// lowSideMin is the least expectation of a block (events) whose dispersion
// is learned from its low side: 3 Poisson standard deviations fit above
// zero, so the low side is not cut short by the floor of the counts.
const lowSideMin = 9

// learnBlock updates the block dispersion with a complete, normal block's
// observed and expected sums.
//
// The drop and silence tests ask how far a stream's block sums fall below
// their expectation and how long a low spell lasts; a bursty stream's
// two-sided spread and correlation are its bursts'. Where a block sums
// several buckets (model.lowSide) both are learned from the low side: the
// dispersion from twice the mean square of the shortfall below the
// expectation (the variance of a symmetric sum), for blocks expected to hold
// at least lowSideMin events (a sparser block's low side is cut short by
// zero; it keeps the two-sided square); the correlation, for streams whose
// blocks hold that much on average (rhoFromLowParts), from the centred low
// parts min(z, 0) of the standardised residuals (blockRho maps it back).
// With buckets as wide as a block a block is one count, skewed like its
// bucket: two-sided.
func (m *model) learnBlock(b *baseline, x, mu, a float64) {
	sd := math.Sqrt(mu + a*mu*mu)
	x = math.Min(math.Max(x, mu-4*sd), mu+4*sd+3)
	if b.nb < math.MaxUint16 {
		b.nb++
	}
	r := math.Max(1/float64(b.nb), m.blockRate)
	d := x - mu
	dv := d
	if m.lowSide && mu >= lowSideMin {
		dv = math.Sqrt2 * math.Min(d, 0)
	}
	b.bv += float32(r * (dv*dv - float64(b.bv)))
	b.bm += float32(r * (mu - float64(b.bm)))
	b.bq += float32(r * (mu*mu - float64(b.bq)))
	ab := m.blockDispersion(b)
	z := d / math.Sqrt(math.Max(mu+ab*mu*mu, 1e-9))
	if m.rhoFromLowParts(b) {
		z = math.Min(z, 0)
		b.bzm += float32(r * (z - float64(b.bzm)))
	} else {
		b.bzm = 0
	}
	b.bzz += float32(r * (z*z - float64(b.bzz)))
	b.bzp += float32(r * (z*float64(b.bzLast) - float64(b.bzp)))
	b.bzLast = float32(z)
}

// rhoFromLowParts reports whether the stream's block correlation is learned
// from the residuals' low parts (learnBlock). A stream whose blocks' mean
// crosses lowSideMin switches the meaning of its correlation moments; they
// are not reset (they follow the new meaning within the block statistics'
// half-life, and meanwhile mostly overstate the correlation: conservative).
func (m *model) rhoFromLowParts(b *baseline) bool { return m.lowSide && b.bm >= lowSideMin }

// breakBlocks marks a block that was not learned: the next one has no
// predecessor, and pairs with the mean residual part (0 two-sided, bzm from
// the low parts), so that a break adds nothing to the centred covariance.
func (b *baseline) breakBlocks() { b.bzLast = b.bzm }

// blockRho is the lag-1 correlation of the stream's standardised block
// residuals (drift, slow bursts): 0 until 16 blocks are learned, capped at 0.8.
//
// From the low parts (rhoFromLowParts): for a standard bivariate normal of
// correlation rho, the centred low parts min(z, 0) correlate as
// c(rho) = (rho·(π − arccos rho) + √(1−rho²) − 1) / (π − 1), less than rho
// (0.43 at 0.5, 0.75 at 0.8); c^0.8 inverts it within 0.03 from rho = 0.3
// up and errs high (towards independence being doubted) below.
func (m *model) blockRho(b *baseline) float64 {
	if b.nb < 16 || b.bzz <= 0 {
		return 0
	}
	if !m.rhoFromLowParts(b) {
		return math.Min(math.Max(float64(b.bzp/b.bzz), 0), 0.8)
	}
	m2 := float64(b.bzm) * float64(b.bzm)
	v := float64(b.bzz) - m2
	if v <= 0 {
		return 0
	}
	c := math.Max((float64(b.bzp)-m2)/v, 0)
	return math.Min(math.Pow(c, 0.8), 0.8)
}

// runInflation is how much the evidence of a run of k blocks (k ≥ 1, not
// necessarily whole) is overstated when their errors follow an AR(1) of lag-1
// correlation rho: the variance of the run's sum relative to independent
// blocks,
//
//	1 + 2·Σ_{h<k} (1 − h/k)·rho^h = (1+rho)/(1−rho) − 2·rho·(1 − rho^k) / (k·(1−rho)²),
//
// 1 for a single block and (1+rho)/(1−rho) for long runs
// (runInflationBuckets, runDispersion), so that drift and slow bursts do not
// add up to a false drop, while a sudden loss is not discounted as if it had
// lasted for hours.
func runInflation(rho, k float64) float64 {
	if rho <= 0 || k <= 1 {
		return 1
	}
	return (1+rho)/(1-rho) - 2*rho*(1-math.Pow(rho, k))/(k*(1-rho)*(1-rho))
}

// learn updates the baseline with the count x of a normal bucket, given the
// prediction (mu, a) that was made for it.
func (m *model) learn(b *baseline, bucket int64, x, mu, a float64) {
	if b.n > 0 {
		sd := math.Sqrt(mu + a*mu*mu)
		// The residual enters the dispersion winsorised at 4 sd, the count
		// enters the averages at 2.5 sd (Huber-like), plus 3 events above so
		// that a sparse stream's single events count.
		xd := math.Min(math.Max(x, mu-4*sd), mu+4*sd+3)
		x = math.Min(math.Max(x, mu-2.5*sd), mu+2.5*sd+3)
		r := math.Max(1/float64(b.n), m.dispRate)
		d := xd - mu
		b.v += float32(r * (d*d - float64(b.v)))
		b.m += float32(r * (mu - float64(b.m)))
		b.q += float32(r * (mu*mu - float64(b.q)))
	}
	if b.n < math.MaxUint16 {
		b.n++
	}
	n := float64(b.n)
	b.short += float32(math.Max(1/n, m.shortRate) * (x - float64(b.short)))
	shf, sdf, _ := m.separable(b, bucket, 1)
	m.accountWeekHour(b, bucket, x, float64(b.level)*shf*sdf)
	hf, df, _ := m.factors(b, bucket)
	// The level learns x/f; where the profile expects less than the level
	// (f < 1) by the gradient of the same, x − f·level, so that a count in
	// a nearly idle slot does not move it by x/f.
	if f, r := hf*df, math.Max(1/n, m.levelRate); f >= 1 {
		b.level += float32(r * (x/f - float64(b.level)))
	} else {
		b.level = float32(math.Max(0, float64(b.level)+r*(x-f*float64(b.level))))
	}
	if b.steadyN < math.MaxUint16 {
		b.steadyN++
	}
	if float64(b.steadyN) >= m.perHour {
		b.learned = bucket
	}
	m.accumulate(b, bucket, x, false)
}

// impute accounts a bucket that is not learned (anomalous, or in a gap) to the
// profiles' sums with its expectation mu instead of its count x, so that the
// day and week still count as complete without the gap shaping them.
//
// Except for a hole that recurs: when the same hour of the previous day (the
// same weekday of the previous week) had a bucket not learned too, and the
// stream was learned normally since then, for an hour running (so it is not
// one long outage, nor one with a stray bucket that looked normal), the
// hole is the stream's rhythm — a source idle every night, or every weekend
// — and it enters that slot's sum as counted; the slot's factor is then
// replaced by this period's at the fold. Such a hole is alerted twice (the
// first and the second time), then expected. A hole that the same hour a
// week before had too is the week's rhythm, left to the hour-of-week
// correction (imputeWeekHour), not every day's: a stray bucket judged
// anomalous on a Friday at 21:00 before a Saturday whose schedule ends at
// 20:00 made every day's 21:00 idle, and the next days' 21:00 read as bursts.
func (m *model) impute(b *baseline, bucket int64, x, mu float64) {
	b.steadyN = 0
	shf, sdf, _ := m.separable(b, bucket, 1)
	m.imputeWeekHour(b, bucket, x, float64(b.level)*shf*sdf)
	m.accumulate(b, bucket, mu, true)
	_, _, h, d := slots(bucket)
	hole := math.Min(x, mu) - mu // a burst (a backlog after the hole) is not rhythm
	if m.holeYesterday(b, bucket) && b.howFlags&howHolePrev == 0 && b.learned >= bucket-86400+3600 {
		b.hourAcc[h] += float32(hole)
		b.recurH |= 1 << h
	}
	if b.prevD&(1<<d) != 0 && b.learned >= bucket-6*86400 {
		b.dayAcc[d] += float32(hole)
		b.recurD |= 1 << d
	}
}

// accumulate adds x to the sums of bucket's slots, folding the previous day
// (week) into the profile first if bucket starts a new one; dirty marks a
// bucket that was not learned.
func (m *model) accumulate(b *baseline, bucket int64, x float64, dirty bool) {
	day, week, h, d := slots(bucket)
	curWeek := weekOf(int64(b.curDay))
	if int32(day) != b.curDay {
		if float64(b.dayN) >= 0.9*m.perDay && fold(b.hour[:], b.hourAcc[:], math.Max(1/float64(b.days+1), m.hourRate), b.recurH) {
			b.days++
		}
		clear(b.hourAcc[:])
		b.recurH = 0
		b.curDay, b.dayN = int32(day), 0
	}
	if week != curWeek {
		if float64(b.weekN) >= 0.9*m.perWeek && fold(b.day[:], b.dayAcc[:], math.Max(1/float64(b.weeks+1), m.dayRate), uint32(b.recurD)) {
			b.weeks++
			m.shrinkWeekHours(b)
		}
		clear(b.dayAcc[:])
		b.prevD = 0
		if week == curWeek+1 {
			b.prevD = b.dirtyD
		}
		b.dirtyD, b.recurD = 0, 0
		b.weekN = 0
	}
	if dirty {
		b.dirtyD |= 1 << d
	}
	b.hourAcc[h] += float32(x)
	b.dayAcc[d] += float32(x)
	b.dayN++
	if b.weekN < math.MaxUint16 {
		b.weekN++
	}
}

// fold averages a period's slot sums, as factors of mean 1, into profile f
// with weight w, or replaces the factors of the slots in replace (a bit per
// slot). It reports false if the period had no events.
func fold(f, acc []float32, w float64, replace uint32) bool {
	// The period's sums are scaled so that the slots not replaced keep their
	// mean: a slot that turned idle (replaced by next to nothing) does not
	// lift the others' expectation; without replacements the factors keep
	// their mean of 1.
	var total, mean float64
	for i, v := range acc {
		if replace&(1<<i) == 0 {
			total += float64(v)
			mean += float64(f[i])
		}
	}
	if total <= 0 {
		return false
	}
	k := mean / total
	for i, v := range acc {
		wi := w
		if replace&(1<<i) != 0 {
			wi = 1
		}
		f[i] = clampFactor(float64(f[i]) + wi*(float64(v)*k-float64(f[i])))
	}
	return true
}

// clampFactor bounds a seasonal factor: from next to nothing (an idle hour)
// to 50 times the mean.
func clampFactor(f float64) float32 { return float32(math.Min(math.Max(f, 1e-6), 50)) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }
