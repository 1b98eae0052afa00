package detect

import (
	"math"
	"slices"
	"time"

	"github.com/gapwatch/gapwatch/storage"
)

// stream is one (tenant, source)'s detection state: baseline, the running
// statistics of the silence, drop and late tests, and its open gaps.
type stream struct {
	tenant, source string
	first          int64 // first bucket, Unix seconds
	next           int64 // next bucket to judge
	active         int64 // end of the last judged bucket with events (first if none): retirement clock
	base           baseline

	// Silence: the current run of empty buckets, which may start with a
	// near-empty one (at most partialSilence of its expectation: the stream
	// stopped in it).
	zeroRun   int32
	zeroObs   float32 // the events of that first bucket
	zeroStart int64
	zeroLogP  float64 // log P(the run as low as it is | baseline)
	zeroExp   float32 // the run's expected events (float32: the stream stays in its 896 B size class)
	zeroJudge float32 // the same as the test judges them (shard.judged)
	// Empty-bucket calibration of the run's dispersion (zeros.go): log of the
	// dispersion for zeros over the bucket dispersion, and the part of it
	// given back because empty blocks came more often than it predicts.
	zeroCal, zeroSpell float32

	// Drop: one-sided CUSUMs of log-likelihood ratios "loss" vs "normal",
	// for the drop fraction and for a deep drop (see thresholds.rhos).
	cus [2]cusum
	// Drop, burst-robust: a CUSUM of buckets below a low quantile (rank.go).
	rank rankState
	// The current block of the drop test: its sums and buckets so far.
	blkExp, blkObs float32
	blkN           int32
	blkClean       bool // every bucket of the block was learned
	// weekendKnown: a young stream has learned a weekend's core
	// (baseline.wkN) and been judged past that weekend's end: its silence
	// and drop tests judge the possible weekends after it by what it carried
	// (judgedWeekend), and it learns no more (learnWeekend). Not within the
	// weekend learned: a Saturday busier than the Sunday after it would
	// make the Sunday a loss.
	weekendKnown bool
	started      bool

	vol *gap // open silence or drop gap

	late lateState

	pending []pendingCount
}

// cusum is a one-sided CUSUM of log-likelihood ratios, with the start of its
// current excursion, its length in buckets and the expected and observed events since.
type cusum struct {
	start    int64
	v        float32
	n        int32
	exp, obs float32
}

// add accounts the ratio l of the bucket from.
func (c *cusum) add(l float64, from int64, exp, obs float64) {
	if c.v == 0 && l > 0 {
		c.start, c.n, c.exp, c.obs = from, 0, 0, 0
	}
	c.v = float32(math.Max(0, float64(c.v)+l))
	if c.v > 0 {
		c.n++
		c.exp += float32(exp)
		c.obs += float32(obs)
	}
}

// evidence is the excursion's log-likelihood ratio corrected for serially
// correlated buckets (model.runInflationBuckets); a is the stream's bucket
// dispersion.
func (c *cusum) evidence(m *model, b *baseline, a float64, blockLen int64) float64 {
	if c.v == 0 { // at rest, the usual case: judged every bucket of every stream
		return 0
	}
	k := float64(c.n)
	return float64(c.v) / m.runInflationBuckets(b, a, k, float64(c.exp)/k, float64(blockLen))
}

type pendingCount struct {
	bucket int64
	events uint64
	late   *[storage.LatenessBuckets]uint64
	first  int64 // earliest arrival of its counts (storage.Count.Arrival); 0: unknown
}

// noneYet is the first arrival of a bucket without events.
const noneYet = math.MaxInt64

// gap is an open gap's lifecycle state.
type gap struct {
	id                 string
	kind               Kind
	start, detected    int64
	expected, observed float64
	seq                uint32
	// Recovery: reverse CUSUM of evidence for "normal again", from recStart.
	rec            float64
	recStart       int64
	recExp, recObs float64
	healthy        int32 // consecutive healthy buckets
	nextUpdate     int64 // bucket end at which the next update is due
	every          int64 // current update interval, seconds
	reclassified   bool  // the kind changed (drop → silence): update now
}

func newStream(tenant, source string) *stream {
	return &stream{tenant: tenant, source: source, base: newBaseline(), late: newLateState()}
}

func (st *stream) add(bucket int64, events uint64, late []uint64, arrival int64) {
	var lp *[storage.LatenessBuckets]uint64
	if len(late) == storage.LatenessBuckets {
		var h [storage.LatenessBuckets]uint64
		copy(h[:], late)
		lp = &h
	}
	for i := range st.pending {
		p := &st.pending[i]
		if p.bucket == bucket {
			p.events += events
			p.first = min(p.first, max(arrival, 0))
			if lp != nil {
				if p.late == nil {
					p.late = lp
				} else {
					for j := range p.late {
						p.late[j] += lp[j]
					}
				}
			}
			return
		}
	}
	st.pending = append(st.pending, pendingCount{bucket: bucket, events: events, late: lp, first: max(arrival, 0)})
}

// judgeUpTo judges the stream's buckets from st.next through last.
func (s *shard) judgeUpTo(st *stream, last int64) {
	w := s.e.width
	if len(st.pending) > 1 {
		slices.SortFunc(st.pending, func(a, b pendingCount) int { return int(a.bucket - b.bucket) })
	}
	if !st.started {
		if len(st.pending) == 0 || st.pending[0].bucket > last {
			return
		}
		st.started, st.first, st.next = true, st.pending[0].bucket, st.pending[0].bucket
		st.active = st.first
	}
	i := 0
	for ; st.next <= last; st.next += w {
		var x uint64
		var late *[storage.LatenessBuckets]uint64
		first := int64(noneYet)
		if i < len(st.pending) && st.pending[i].bucket == st.next {
			x, late, first = st.pending[i].events, st.pending[i].late, st.pending[i].first
			i++
		}
		b := st.next
		s.judge(st, b, float64(x), late, first)
		if x > 0 {
			st.active = b + w
		} else if b+w-st.active >= s.e.th.retire {
			s.keepLast(st)
			s.retire(st, b+w, st.pending[i:], last)
			return
		}
	}
	s.keepLast(st)
	n := copy(st.pending, st.pending[i:])
	clear(st.pending[n:])
	st.pending = st.pending[:n]
}

// keepLast adds, in ExpectLast mode, st's latest judged bucket of this call
// to the expectations, with the start of its last bucket with events.
func (s *shard) keepLast(st *stream) {
	if !s.hasLast {
		return
	}
	if st.active > st.first {
		s.last.LastEvents = time.Unix(st.active-s.e.width, 0).UTC()
	}
	s.exps = append(s.exps, s.last)
	s.last, s.hasLast = Expectation{}, false
}

// retire drops stream st at time at (the end of the bucket that completed
// Config.RetireAfter without events): its open gaps get a final gap.resolved
// marked retired, with what was expected and observed up to at, and its state
// is removed from the shard. Counts already filed for later buckets (rest)
// start a fresh stream, exactly as if they had arrived after the retirement.
func (s *shard) retire(st *stream, at int64, rest []pendingCount, last int64) {
	for _, g := range []*gap{st.vol, st.late.gap} {
		if g != nil {
			s.emit(st, g, TypeGapResolved, at, at)
			s.events[len(s.events)-1].Retired = true
		}
	}
	s.retired = append(s.retired, StreamRef{Tenant: st.tenant, Source: st.source, At: time.Unix(at, 0).UTC()})
	k := streamKey{st.tenant, st.source}
	if len(rest) == 0 {
		delete(s.streams, k)
		return
	}
	fresh := newStream(st.tenant, st.source)
	fresh.pending = slices.Clone(rest)
	s.streams[k] = fresh // replaces the value of a present key: safe while ranging
	s.judgeUpTo(fresh, last)
}

// partialSilence is the largest share of its expectation a bucket may hold
// and still start a silence (see judge).
const partialSilence = 0.1

// idleShare is the share of a stream's deseasonalised rate below which its
// profile expects a bucket to be idle (a night, a closed hour): such a
// bucket ends the drop CUSUMs' excursions (see judge).
const idleShare = 0.02

// judge decides one bucket b with x events, the first of which arrived at
// first (Unix seconds; noneYet without events, 0 when unknown).
func (s *shard) judge(st *stream, b int64, x float64, late *[storage.LatenessBuckets]uint64, first int64) {
	e := s.e
	th := &e.th
	mu, a := e.model.expect(&st.base, b)
	if st.base.n == 0 {
		mu = 0
	}
	learn := true
	state := "ok"
	if st.blkN == 0 {
		st.blkExp, st.blkObs, st.blkClean = 0, 0, true
	}
	st.blkN++
	st.blkExp += float32(mu)
	st.blkObs += float32(x)
	blockEnd := e.blockEnd(b)
	if st.vol != nil {
		st.rank.reset()
	}
	// The tests' state at the decisions, for Explain.
	var dropEv, dropRaw [2]float64
	var rankEv, silLogP float64
	var silRun int32
	switch {
	case st.base.n < th.minLearned:
		state = "learning"
	case st.vol != nil:
		learn = false
		s.continueGap(st, st.vol, b, x, mu, a, blockEnd)
	case s.earlySilence(st, b, mu, a, first, b+e.width):
		// Opened at a slot inside b, as live detection's Peek did: b then
		// counts to the open gap.
		learn = false
		silRun, silLogP = s.earlyRun, s.earlyLogP
		s.continueGap(st, st.vol, b, x, mu, a, blockEnd)
	default:
		// Silence: probability that a run of empty buckets this long happens,
		// started by an empty bucket or by one holding next to nothing (P(X ≤ x)
		// bounded above by (x+1)·P(X = x), exact enough deep in the NB lower
		// tail where the normal approximation is far too generous). Under the
		// model, the run's probability bounds the test's false alarms either
		// way: it fires for every first bucket at most as high as the one seen.
		mt := s.judged(st, b, mu)
		switch {
		case x == 0:
			st.addEmpty(b, mu, mt, a)
		case x <= partialSilence*mt:
			st.zeroRun, st.zeroStart, st.zeroExp, st.zeroJudge, st.zeroObs = 1, b, float32(mu), float32(mt), float32(x)
			st.zeroLogP = logLowerTailBound(x, mt, a)
		default:
			st.zeroRun = 0
		}
		// Drop: CUSUMs, bucket by bucket, of the log-likelihood ratio of "rho
		// of the events" vs "all", their excursions' evidence divided by how
		// much correlated buckets overstate it (drift, a profile wrong for
		// hours). Bucket by bucket, a loss is weighed from the bucket it
		// started in, not diluted by the healthy start of a fixed block.
		// The drop test waits for the hourly profile: before it, the short-term
		// rate trails every daily swing, and a gap would stop the profile from
		// being learned (cold start protects against silence only).
		seasonal := st.base.days >= 2
		var fired *cusum // the drop CUSUM over its threshold
		if seasonal {
			if mu < idleShare*float64(st.base.level) {
				// A bucket the profile expects to be idle (a night, a closed
				// hour) ends the drop CUSUMs' excursions and adds nothing to
				// them: their run correction reads serial correlation in
				// clock time, and across an idle night it would take an
				// evening's deficit and the next day's as nearly
				// independent, while a day's weather or schedule moves both.
				st.cus = [2]cusum{}
			} else {
				for i, rho := range th.rhos {
					// While the day may be quieter (mt < mu: a young
					// stream's possible weekend, judgedWeekend), a loss is "rho
					// of mu" against "the quietest day": none below it. Where
					// the deep alternative is not below the quietest day (the
					// default weekend floor is a quarter), it is a tenth
					// (heavyDrop), so that a heavy loss in a young stream's
					// possible weekend is still weighed.
					if i == 1 && rho*mu >= mt {
						rho = heavyDrop
					}
					l := 0.0
					if rho*mu < mt {
						l = llrLoss(x, mt, a, rho*mu/mt)
					}
					st.cus[i].add(l, b, mu, x)
					dropRaw[i] = float64(st.cus[i].v)
					if dropEv[i] = st.cus[i].evidence(&e.model, &st.base, a, e.blockLen); dropEv[i] > th.hDrop && fired == nil {
						fired = &st.cus[i]
					}
				}
			}
			if rankEv = st.rank.judge(&e.model.rank, b, x, mu, mt); rankEv > th.hDrop && fired == nil {
				fired = &st.rank.cus
			}
		} else {
			// Cold start: the heavy-drop CUSUM runs without firing, as the
			// evidence that a fresh stream's rate has fallen (coldIdle).
			st.cus[1].add(llrLoss(x, mu, a, heavyDrop), b, mu, x)
		}
		silRun = st.zeroRun
		if st.zeroRun > 0 {
			silLogP = s.runLogP(st, st.zeroLogP, float64(st.zeroJudge), float64(st.zeroObs), float64(st.zeroRun))
		}
		switch {
		case st.zeroRun > 0 && silLogP < th.lnAlpha:
			s.open(st, &st.vol, KindSilence, st.zeroStart, b, float64(st.zeroExp), float64(st.zeroObs))
			st.zeroRun, st.cus = 0, [2]cusum{}
			learn = false
		case fired != nil:
			c := fired
			s.open(st, &st.vol, KindDrop, c.start, b, float64(c.exp), float64(c.obs))
			st.zeroRun, st.cus = 0, [2]cusum{}
			learn = false
		case st.zeroRun > 0 && st.zeroLogP < math.Log(th.anomalous),
			st.base.days < 2 && st.zeroJudge < st.zeroExp && coldSuspicious(st.zeroRun, float64(st.zeroExp), a, th.anomalous),
			seasonal && (lowerTail(x, mu, a) < th.anomalous || dropEv[0] > th.hDrop/2 || dropEv[1] > th.hDrop/2):
			learn = false // suspicious: judged, but not learned
		}
		// After the decisions: bucket b is judged with the calibration of
		// the buckets before it, as its early-silence slots were.
		calibrateZeros(st, x, mu, a)
		if st.vol == nil && !st.weekendKnown {
			e.model.learnWeekend(&st.base, b, x, mu)
		}
		if !st.weekendKnown && st.base.wkN >= e.model.weekendLearn && !possibleWeekend(b) {
			st.weekendKnown = true
		}
	}
	if st.vol != nil {
		state = "gap"
		if st.vol.kind == KindDrop {
			state = "drop"
		}
	}
	lateEv := st.late.cus
	if late != nil {
		lateEv = s.judgeLate(st, b, late)
	}
	if st.late.gap != nil && state == "ok" {
		state = "late"
	}
	if e.expect != ExpectNone {
		ex := Expectation{Tenant: st.tenant, Source: st.source, Bucket: time.Unix(b, 0).UTC(), Observed: uint64(x), State: state}
		ex.Profile, ex.Weekend = e.model.learned(&st.base, st.weekendKnown)
		if state != "learning" {
			ex.Expected = mu
			ex.Lower, ex.Upper = band(mu, a)
		}
		if e.expect == ExpectEvery {
			s.exps = append(s.exps, ex)
		} else {
			s.last, s.hasLast = ex, true
		}
	}
	if s.explained(st) {
		s.explain(st, b, x, mu, a, state, silRun, silLogP, dropEv, dropRaw, rankEv, lateEv)
	}
	cold := st.base.days < 2
	if learn {
		e.model.learn(&st.base, b, x, mu, a)
	} else {
		e.model.impute(&st.base, b, x, mu)
		st.blkClean = false
	}
	if cold && st.base.days >= 2 {
		st.cus = [2]cusum{} // the drop test starts afresh on the seasonal prediction
	}
	if blockEnd {
		if st.vol == nil && int64(st.blkN) == e.blockLen && st.base.n >= th.minLearned {
			s.calibrateSpells(st, float64(st.blkObs), float64(st.blkExp))
		}
		// Block statistics feed the drop test only, which runs on the seasonal
		// prediction: errors of the cold-start rate (which trails every daily
		// swing) must not shape them.
		if st.blkClean && int64(st.blkN) == e.blockLen && st.base.days >= 2 {
			e.model.learnBlock(&st.base, float64(st.blkObs), float64(st.blkExp), e.model.dispersion(&st.base)/float64(e.blockLen))
		} else {
			st.base.breakBlocks()
		}
		st.blkN = 0
	}
}

// open starts a gap whose first missing bucket is start, detected at the end of bucket b.
func (s *shard) open(st *stream, slot **gap, kind Kind, start, b int64, expected, observed float64) {
	s.openAt(st, slot, kind, start, b+s.e.width, expected, observed)
}

// openAt starts a gap whose first missing bucket is start, detected at time at.
func (s *shard) openAt(st *stream, slot **gap, kind Kind, start, at int64, expected, observed float64) {
	e := s.e
	g := &gap{
		id:       GapID(st.tenant, st.source, kind, time.Unix(start, 0)),
		kind:     kind,
		start:    start,
		detected: at,
		expected: expected,
		observed: observed,
		every:    int64(e.cfg.UpdateFirst / time.Second),
	}
	g.nextUpdate = g.detected + g.every
	*slot = g
	s.emit(st, g, TypeGapOpened, at, 0)
}

// earlySlots is how many slots inside a bucket an early silence is judged at:
// after each quarter of it but the last (the bucket's end is judged anyway).
const earlySlots = 3

// earlySilence judges bucket b of a learned stream without an open gap at
// the slots inside it up to until, in order, before the bucket is complete:
// at slot t, when none of b's events arrived before t (first ≥ t) and the
// run of empty buckets before b together with b's part up to t is as
// improbable as a silence must be, the silence opens at t. Under the model
// b's part up to t holds the same share of its expectation (a gamma-Poisson
// count thinned uniformly), and the slots' events are nested (empty up to a
// later slot implies empty up to an earlier one): judging them adds no false
// alarms beyond the first slot's. A busy stream that stops is so flagged a
// fraction of a bucket after the first empty bucket starts. Arrival times
// come with live counts; other counts (backtests) have none and are judged at
// bucket ends only. It reports whether a silence opened; the gap's expected
// events exclude b, which the caller accounts to it.
func (s *shard) earlySilence(st *stream, b int64, mu, a float64, first, until int64) bool {
	e := s.e
	if first == 0 || e.width < earlySlots+1 || st.vol != nil {
		return false
	}
	if t := b + e.width/(earlySlots+1); t > until || first < t {
		return false // not even the first slot: events came before it, or it is not due
	}
	mt := s.judged(st, b, mu)
	logP, start, exp, judge := 0.0, b, 0.0, 0.0
	obs := 0.0
	if st.zeroRun > 0 {
		logP, start, exp, judge, obs = st.zeroLogP, st.zeroStart, float64(st.zeroExp), float64(st.zeroJudge), float64(st.zeroObs)
	}
	for k := int64(1); k <= earlySlots; k++ {
		t := b + k*e.width/(earlySlots+1)
		if t > until || first < t {
			return false
		}
		share := float64(k) / (earlySlots + 1)
		part := mu * share
		if lp := s.runLogP(st, logP+logP0(mt*share, a), judge+mt*share, obs, float64(st.zeroRun)+share); lp < e.th.lnAlpha {
			s.earlyRun, s.earlyLogP = st.zeroRun+1, lp // for Explain
			s.openAt(st, &st.vol, KindSilence, start, t, exp+part, obs)
			st.vol.expected -= part // b is accounted whole by the caller
			st.zeroRun, st.cus = 0, [2]cusum{}
			return true
		}
	}
	return false
}

// judged is the mean the silence and drop tests judge bucket b of stream st
// against (model.judgedStream), and 0 while a fresh stream's empty run may be its
// first idle period (coldIdle).
func (s *shard) judged(st *stream, b int64, mu float64) float64 {
	if s.coldIdle(st, b) {
		return 0
	}
	return s.e.model.judgedStream(st, b, mu)
}

// coldIdle reports whether bucket b of stream st, about to extend its run of
// empty buckets (or start one), may belong to the stream's first idle
// period (its first night): the stream has not yet been seen at this time of
// day (b within a day of its first bucket), and just before the run its rate
// fell by about an order of magnitude — the heavy-drop CUSUM (90 % lost; in
// cold start it runs without firing) was in an excursion whose buckets
// before the run held fewer events than their expectation allows more often
// than once a day (a lower tail below 1/buckets per day). A stream that winds
// down for the night then goes idle; one that dies at its rate has no such
// excursion before its run and is judged as before. An idle period cannot
// last beyond the time of day the stream was first seen (it was active
// then), so from a day after its first bucket the run is judged again.
func (s *shard) coldIdle(st *stream, b int64) bool {
	if st.base.days >= 2 || b >= st.first+86400 {
		return false
	}
	c := &st.cus[1]
	n, exp, obs := c.n, float64(c.exp), float64(c.obs)
	if st.zeroRun > 0 { // the excursion's buckets before the run
		n, exp, obs = n-st.zeroRun, exp-float64(st.zeroExp), obs-float64(st.zeroObs)
	}
	if c.v == 0 || n <= 0 || exp <= 0 {
		return false
	}
	a := s.e.model.runDispersion(&st.base, float64(n), float64(s.e.blockLen))
	return lowerTail(obs, exp, a) < 1/s.e.model.perDay
}

// runLogP is the log-probability of a silence run of k buckets with expected
// events exp and observed obs (all in its first bucket): the larger of the
// product of its buckets' probabilities (logP) and that of its sum with the
// run's dispersion (runDispersion), so that a stream whose quiet spells
// cluster (a rate that wanders for longer than a bucket) needs a longer run.
func (s *shard) runLogP(st *stream, logP, exp, obs, k float64) float64 {
	a := s.e.model.runDispersion(&st.base, k, float64(s.e.blockLen))
	if obs == 0 {
		a *= silenceScale(st) // zeros.go: what the stream's empty buckets say
	}
	var sum float64
	if obs == 0 {
		sum = logP0(exp, a)
	} else {
		sum = logLowerTailBound(obs, exp, a)
	}
	return math.Max(logP, sum)
}

// continueGap accounts bucket b to an open silence or drop gap. Recovery from
// a silence is judged per bucket against "5 % of the events"; recovery from a
// drop per block, against the drop test's alternative.
func (s *shard) continueGap(st *stream, g *gap, b int64, x, mu, a float64, blockEnd bool) {
	th := &s.e.th
	healthy := lowerTail(x, s.e.model.judgedStream(st, b, mu), a) >= th.anomalous
	ev := evidence{from: b, expected: mu, observed: x}
	if g.kind == KindDrop && s.emptySinceOpen(st, b, x, mu, a) {
		g.kind, g.reclassified = KindSilence, true
	}
	if g.kind == KindSilence {
		ev.llr = llrLoss(x, mu, a, th.rhoSilence)
	} else if blockEnd {
		bx, bm := float64(st.blkObs), float64(st.blkExp)
		from := b - int64(st.blkN-1)*s.e.width // the block's first bucket
		ev = evidence{from: from, expected: bm, observed: bx,
			llr: llrLoss(bx, bm, s.e.model.blockDispersion(&st.base), th.rho)}
	}
	if s.step(st, g, b, ev, healthy, mu, x) {
		st.vol = nil
		st.zeroRun, st.cus = 0, [2]cusum{}
	}
}

// addEmpty extends the stream's run of empty buckets with b (expectation mu,
// judged against mt).
func (st *stream) addEmpty(b int64, mu, mt, a float64) {
	if st.zeroRun == 0 {
		st.zeroStart, st.zeroLogP, st.zeroExp, st.zeroJudge, st.zeroObs = b, 0, 0, 0, 0
	}
	st.zeroRun++
	st.zeroLogP += logP0(mt, a)
	st.zeroExp += float32(mu)
	st.zeroJudge += float32(mt)
}

// emptySinceOpen extends the run of empty buckets since a gap opened with b
// (the run fields are free while a gap is open) and says whether the run is a
// silence by the silence test. It turns an open drop into a silence: a busy
// stream that stops late in a bucket leaves it part full, the drop test finds
// that bucket first, and the stop would stay a "drop" — a consumer routing
// silences would miss it. The gap keeps its id and start; the change is
// published at once as a gap.updated with kind silence (maybeUpdate).
func (s *shard) emptySinceOpen(st *stream, b int64, x, mu, a float64) bool {
	if x > 0 {
		st.zeroRun = 0
		return false
	}
	st.addEmpty(b, mu, s.e.model.judgedStream(st, b, mu), a)
	return s.runLogP(st, st.zeroLogP, float64(st.zeroJudge), 0, float64(st.zeroRun)) < s.e.th.lnAlpha
}

// evidence is a test's log-likelihood ratio for "still missing" over the
// buckets from..b, with their expected and observed events.
type evidence struct {
	llr                float64
	from               int64
	expected, observed float64
}

// step accounts bucket b (expected and observed events) to an open gap. ev
// is the evidence that became available with b, healthy whether b alone looks
// normal. The gap resolves, and step returns true, once the stream has been
// healthy for the hold and the evidence of recovery (a reverse CUSUM) exceeds
// 100:1; the gap then ends where that evidence started. Otherwise the gap is
// updated when due.
func (s *shard) step(st *stream, g *gap, b int64, ev evidence, healthy bool, expected, observed float64) bool {
	th := &s.e.th
	g.expected += expected
	g.observed += observed
	prev := g.rec
	g.rec = math.Max(0, prev-ev.llr)
	switch {
	case g.rec > 0 && prev == 0:
		g.recStart, g.recExp, g.recObs = ev.from, ev.expected, ev.observed
		if g.recStart <= g.start {
			// Back within the bucket the gap started in (an early silence
			// opens inside it): that bucket stays the gap's, missing events
			// and all; recovery starts after it.
			g.recStart, g.recExp, g.recObs = g.start+s.e.width, 0, 0
		}
	case g.rec > 0:
		g.recExp += expected
		g.recObs += observed
	}
	if healthy {
		g.healthy++
	} else {
		g.healthy = 0
	}
	end := b + s.e.width
	if g.rec >= th.hResolve && g.healthy >= th.hold {
		g.expected -= g.recExp
		g.observed -= g.recObs
		s.emit(st, g, TypeGapResolved, end, g.recStart)
		return true
	}
	s.maybeUpdate(st, g, end)
	return false
}

func (s *shard) maybeUpdate(st *stream, g *gap, end int64) {
	if g.reclassified {
		g.reclassified = false
		if end < g.nextUpdate {
			s.emit(st, g, TypeGapUpdated, end, 0) // out of turn: the kind changed
			return
		}
	}
	if end < g.nextUpdate {
		return
	}
	s.emit(st, g, TypeGapUpdated, end, 0)
	g.every = min(2*g.every, int64(s.e.cfg.UpdateMax/time.Second))
	g.nextUpdate = end + g.every
}

func (s *shard) emit(st *stream, g *gap, typ string, at int64, ended int64) {
	ev := Event{
		Type:          typ,
		Time:          time.Unix(at, 0).UTC(),
		Origin:        s.e.cfg.EventSource,
		GapID:         g.id,
		Tenant:        st.tenant,
		Source:        st.source,
		Kind:          g.kind,
		StartedAt:     time.Unix(g.start, 0).UTC(),
		DetectedAt:    time.Unix(g.detected, 0).UTC(),
		Expected:      g.expected,
		Observed:      g.observed,
		Missing:       math.Max(0, g.expected-g.observed),
		Seq:           g.seq,
		BucketSeconds: s.e.width,
	}
	if typ == TypeGapResolved {
		ev.EndedAt = time.Unix(ended, 0).UTC()
	}
	g.seq++
	s.events = append(s.events, ev)
}

// judgedStream is model.judged for stream st: once its weekend is known, its
// possible weekends are judged by what its first weekend carried (judgedWeekend).
func (m *model) judgedStream(st *stream, b int64, mu float64) float64 {
	mt := m.judged(&st.base, b, mu)
	if st.weekendKnown {
		mt = m.judgedWeekend(&st.base, mu, mt)
	}
	return mt
}
