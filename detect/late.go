package detect

import (
	"math"

	"github.com/gapwatch/gapwatch/storage"
)

// lateState detects a shift of a stream's lateness (arrival − event time).
//
// It learns the stream's lateness profile — the share of its events in each
// class of storage.LatenessBounds, averaged over buckets — and from it the
// stream's normal class u, the smallest class holding 99 % of its events. A
// bucket is "late" when most of its events are beyond u (its median lateness is
// beyond the norm's 99th percentile). Buckets, not events, are the unit, because
// events arrive in batches whose lateness is shared. The stream's normal rate
// of late buckets pi is learned too, and a CUSUM of the Bernoulli
// log-likelihood ratio "half the buckets late" vs "pi" opens a late gap at the
// same threshold as the drop test. About 80 bytes.
type lateState struct {
	share    [storage.LatenessBuckets]float32
	pi       float32 // normal probability of a late bucket
	n        uint32  // buckets with events learned
	cus      float64
	cusStart int64
	cusExp   float32 // events since cusStart
	cusObs   float32 // of which on time
	gap      *gap
}

const (
	latePrior = 0.01 // prior probability of a late bucket
	lateAlt   = 0.5  // the alternative: half of the buckets late
	lateMinN  = 60   // buckets with events before the lateness test starts
)

func newLateState() lateState { return lateState{pi: latePrior} }

// normalClass is the smallest lateness class holding 99 % of the learned shares.
func (l *lateState) normalClass() int {
	var cum float32
	for j, v := range l.share {
		cum += v
		if cum >= 0.99 {
			return j
		}
	}
	return len(l.share) - 1
}

// judgeLate accounts bucket b's lateness histogram to st's lateness test and
// returns the test's evidence at b (before an opening resets it).
func (s *shard) judgeLate(st *stream, b int64, hist *[storage.LatenessBuckets]uint64) float64 {
	l := &st.late
	var total uint64
	for _, v := range hist {
		total += v
	}
	if total == 0 {
		return l.cus // no evidence either way
	}
	u := l.normalClass()
	var beyond uint64
	for _, v := range hist[u+1:] {
		beyond += v
	}
	isLate := 2*beyond > total
	// The learned rate, shrunk towards the prior by 100 buckets' weight.
	n := math.Min(float64(l.n), 1/s.e.model.dispRate)
	pi := math.Min(math.Max((100*latePrior+n*float64(l.pi))/(100+n), 0.001), 0.25)
	llr := math.Log((1 - lateAlt) / (1 - pi))
	if isLate {
		llr = math.Log(lateAlt / pi)
	}
	th := &s.e.th
	learn := true
	ev := l.cus
	switch {
	case l.n < lateMinN:
	case l.gap != nil:
		learn = false
		if s.step(st, l.gap, b, evidence{llr: llr, from: b, expected: float64(total), observed: float64(total - beyond)}, !isLate, float64(total), float64(total-beyond)) {
			l.gap, l.cus = nil, 0
		}
	default:
		if l.cus == 0 && llr > 0 {
			l.cusStart, l.cusExp, l.cusObs = b, 0, 0
		}
		l.cus = math.Max(0, l.cus+llr)
		ev = l.cus
		if l.cus > 0 {
			l.cusExp += float32(total)
			l.cusObs += float32(total - beyond)
		}
		if l.cus > th.h {
			s.open(st, &l.gap, KindLate, l.cusStart, b, float64(l.cusExp), float64(l.cusObs))
			l.cus = 0
			learn = false
		} else if l.cus > th.h/2 {
			learn = false
		}
	}
	if !learn {
		return ev
	}
	l.n++
	r := math.Max(1/float64(l.n), s.e.model.dispRate)
	for j, v := range hist {
		l.share[j] += float32(r * (float64(v)/float64(total) - float64(l.share[j])))
	}
	if l.n > 1 {
		ind := 0.0
		if isLate {
			ind = 1
		}
		l.pi += float32(r * (ind - float64(l.pi)))
	}
	return ev
}
