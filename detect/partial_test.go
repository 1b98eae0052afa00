package detect

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/simulate"
	"github.com/gapwatch/gapwatch/storage"
)

// A busy stream that stops a few seconds into a bucket is flagged at the end of
// that bucket, not one bucket later; a low-volume stream with the same share
// is not (it is not statistically clear), and a bucket at 30 % is not a silence.
func TestSilenceOpensOnAMostlyEmptyBucket(t *testing.T) {
	run := func(rate float64, last uint64) []Event {
		e, err := New(Config{Bucket: time.Minute, Workers: 1})
		require.NoError(t, err)
		r := rand.New(rand.NewPCG(1, 2))
		t0 := int64(1_780_000_000) / 60 * 60
		var events []Event
		for i := range 40 {
			n := uint64(max(0, rate+r.NormFloat64()*0.5*rate/10))
			b := t0 + int64(i)*60
			res := e.Advance(time.Unix(b+60, 0), []storage.Count{{Tenant: "t", Source: "s", Bucket: b, Events: n}})
			events = append(events, res.Events...)
		}
		require.Empty(t, events, "steady stream")
		b := t0 + 40*60
		res := e.Advance(time.Unix(b+60, 0), []storage.Count{{Tenant: "t", Source: "s", Bucket: b, Events: last}})
		return res.Events
	}
	evs := run(300, 12) // stopped 2.4 s into the bucket
	require.Len(t, evs, 1)
	require.Equal(t, TypeGapOpened, evs[0].Type)
	require.Equal(t, KindSilence, evs[0].Kind)
	require.Equal(t, evs[0].StartedAt.Add(time.Minute), evs[0].DetectedAt, "opened at the end of the mostly empty bucket")
	require.Empty(t, run(300, 90), "30 % of a bucket is not a silence")
	require.Empty(t, run(3, 0), "3 events a minute: one empty bucket is not yet clear")
}

// The bound is an upper bound of the exact tail and far below the normal
// approximation deep in the tail.
func TestLogLowerTailBound(t *testing.T) {
	for _, c := range []struct{ x, mu, a float64 }{{0, 5, 0}, {3, 20, 0}, {12, 300, 0.1}, {5, 25, 0.3}, {0, 2, 2}, {4, 28, 0.05}} {
		exact := math.Log(lowerTail(c.x, c.mu, c.a)) // exact below mu 30
		if c.mu >= 30 {
			exact = math.Inf(-1)
			for k := 0.0; k <= c.x; k++ {
				exact = math.Max(exact, logPMF(k, c.mu, c.a)) // a lower bound of the tail
			}
		}
		bound := logLowerTailBound(c.x, c.mu, c.a)
		require.GreaterOrEqual(t, bound, exact-1e-9, "%+v", c)
	}
	require.Less(t, logLowerTailBound(12, 300, 0.107), math.Log(1e-6))
	require.Greater(t, math.Log(lowerTail(12, 300, 0.107)), math.Log(1e-3), "the normal approximation is generous here")
	require.Equal(t, 0.0, logLowerTailBound(250, 300, 0.5), "above the mode: no claim")
}

// A busy but overdispersed stream, seen for 20 minutes (cold start), stops a
// few seconds into a bucket: that bucket alone is not yet clear, but it starts
// the run of low buckets, so the next, empty one is flagged at an early slot
// (not at its end) and the gap starts where the stream stopped. The near-empty
// bucket is not learned as normal either.
func TestNearEmptyBucketStartsTheSilence(t *testing.T) {
	e, err := New(Config{Bucket: time.Minute, Workers: 1})
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(3, 4))
	t0 := int64(1_780_000_000) / 60 * 60
	for i := range 20 {
		n := simulate.GammaPoisson(r, 300, 0.3)
		b := t0 + int64(i)*60
		res := e.Advance(time.Unix(b+60, 0), []storage.Count{{Tenant: "t", Source: "s", Bucket: b, Events: n, Arrival: b + 1}})
		require.Empty(t, res.Events)
	}
	stop := t0 + 20*60
	res := e.Advance(time.Unix(stop+60, 0), []storage.Count{{Tenant: "t", Source: "s", Bucket: stop, Events: 8, Arrival: stop + 2}})
	require.Empty(t, res.Events, "the stop bucket alone is not clear at this dispersion")
	res = e.Advance(time.Unix(stop+120, 0), nil)
	evs := of(res.Events, TypeGapOpened)
	require.Len(t, evs, 1)
	require.Equal(t, stop, evs[0].StartedAt.Unix(), "the gap starts in the bucket the stream stopped in")
	require.Less(t, evs[0].DetectedAt.Unix(), stop+120, "at a slot of the empty bucket")
	require.Equal(t, 8.0, evs[0].Observed)
}
