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

// burstyRate is a busy stream whose volume comes in bursts, like social-media
// mentions: a daily rhythm (2:1) and, about every three hours, a burst of
// 15 minutes to an hour at 2–8 times the rate. The bursts make its
// two-sided spread (bucket and block dispersion, their correlation) large;
// its low side is as steady as a Poisson stream's.
type burstyRate struct {
	r         *rand.Rand
	perBucket float64
	mult      float64
	burstLeft int
}

func (s *burstyRate) next(b int64) float64 {
	if s.burstLeft == 0 && s.r.Float64() < 1.0/36 {
		s.mult = math.Exp(math.Log(2) + s.r.Float64()*math.Log(4))
		s.burstLeft = 3 + s.r.IntN(10)
	}
	m := 1.0
	if s.burstLeft > 0 {
		m = s.mult
		s.burstLeft--
	}
	day := 1 + math.Cos(2*math.Pi*(float64(b%86400)/86400-0.6))/3
	return s.perBucket * day * m
}

// A bursty busy stream loses 70 % of its events for six hours on the
// Wednesday of its fifth week (the held-back acceptance data of issue 19:
// such losses of social-media volume went unflagged), in each of 20 trials.
// The NB CUSUMs weigh the thinning against the bursts' spread and miss it
// (none found without the rank test); the rank test, whose low quantile the
// bursts do not move, finds at least 18 within the loss, as drops that start
// inside it (a burst during the loss can end an excursion: the gap then
// starts later). The four weeks before raise false drops at most at the
// product target of 0.1 per stream-week: the bursts learned into the hourly
// profile make an hour's expectation two to three times the stream's quiet
// rate now and then (5 in 86 stream-weeks here), which the rank test's
// learned low runs do not always cover.
func TestBurstyStreamLosesSeventyPercent(t *testing.T) {
	const trials = 20
	lossFrom := int64(4*7*288 + 2*288 + 10*12) // Wednesday 10:00 of week 5
	const lossLen = 6 * 12
	found, falseDrops := 0, 0
	for seed := range uint64(trials) {
		e, err := New(Config{Bucket: 5 * time.Minute, Workers: 1})
		require.NoError(t, err)
		r := rand.New(rand.NewPCG(seed, 19))
		rate := &burstyRate{r: r, perBucket: 60}
		var opened []Event
		for i := range lossFrom + lossLen + 12 {
			b := rhythmMonday + i*300
			n := simulate.GammaPoisson(r, rate.next(b), 0.02)
			if i >= lossFrom && i < lossFrom+lossLen {
				n = thin(r, n, 0.3)
			}
			for _, ev := range e.Advance(time.Unix(b+300, 0), []storage.Count{{Tenant: "t", Source: "s", Bucket: b, Events: n}}).Events {
				if ev.Type != TypeGapOpened {
					continue
				}
				if ev.DetectedAt.Unix() <= rhythmMonday+lossFrom*300 {
					require.Equal(t, KindDrop, ev.Kind, "seed %d: %+v", seed, ev)
					falseDrops++
					continue
				}
				opened = append(opened, ev)
			}
		}
		if len(opened) == 0 || opened[0].DetectedAt.Unix() > rhythmMonday+(lossFrom+lossLen)*300 {
			continue
		}
		found++
		require.Equal(t, KindDrop, opened[0].Kind, "seed %d", seed)
		start := (opened[0].StartedAt.Unix()-rhythmMonday)/300 - lossFrom
		require.True(t, start >= -3 && start < lossLen, "seed %d: the drop starts %d buckets off", seed, start)
	}
	require.GreaterOrEqual(t, found, 18, "six-hour 70 %% losses of a bursty stream found within the loss, of %d", trials)
	weeks := float64(trials) * float64(lossFrom) / (7 * 288)
	require.LessOrEqual(t, float64(falseDrops)/weeks, 0.1, "false drops per stream-week (%d in %.0f)", falseDrops, weeks)
}

// thin keeps each of n events with probability keep.
func thin(r *rand.Rand, n uint64, keep float64) uint64 {
	var k uint64
	for range n {
		if r.Float64() < keep {
			k++
		}
	}
	return k
}

// rankHistory teaches a rank test n buckets of a stream whose count /
// expectation ratio is drawn by ratio (expectation 100 events a bucket).
func rankHistory(r *rankState, rates *rankRates, n int, ratio func() float64) {
	for i := range n {
		r.judge(rates, int64(i), math.Round(100*ratio()), 100, 100)
	}
}

// A loss's own low run is not learned while it is weighed: on a stream
// whose low buckets come alone (i.i.d. log-normal ratios, so its long runs'
// classes keep their prior ½), a run of buckets at a fifth of the
// expectation crosses the drop threshold within 16 buckets (ln(0.9/0.02)
// for the first, ln(0.9/0.5) for each bucket of a long run), and the classes
// learn the run only once it has ended. Learning each bucket as it came made
// the run teach that long runs go on while it was being weighed (NAB
// Twitter AAPL: an 81 % loss stalled at 13.0 of the 13.3 needed).
func TestLowRunIsLearnedWhenItEnds(t *testing.T) {
	rates := newRankRates(288)
	rng := rand.New(rand.NewPCG(3, 4))
	var r rankState
	rankHistory(&r, &rates, 4000, func() float64 { return math.Exp(0.35 * rng.NormFloat64()) })
	before := r.p
	h := newThresholds(Config{Bucket: 5 * time.Minute}.withDefaults()).hDrop
	crossed := 0
	for i := 1; i <= 20; i++ {
		if r.judge(&rates, int64(4000+i), 20, 100, 100) > h && crossed == 0 {
			crossed = i
		}
		require.Equal(t, before, r.p, "bucket %d: the run is not learned while it lasts", i)
	}
	require.NotZero(t, crossed, "20 buckets at a fifth of the expectation cross %.1f", h)
	require.LessOrEqual(t, crossed, 16, "buckets to cross %.1f", h)
	r.judge(&rates, 4021, 100, 100, 100)
	require.Greater(t, r.p[rankClass(8)], before[rankClass(8)], "the run is learned at its end")
}

// A regular stream's 2 % quantile of count / expectation sits close to 1
// (NYC taxi: about 0.85), so a night at three quarters of a busy holiday
// eve's profile was a run of "low" buckets and, once runs were no longer
// learned as they came, a drop. A bucket holding more than rankCeil of its
// expectation is no evidence of a loss of half, whatever the quantile: ten
// hours at 0.75 leave the CUSUM at zero.
func TestShallowDipOfARegularStreamIsNoLoss(t *testing.T) {
	rates := newRankRates(288)
	rng := rand.New(rand.NewPCG(5, 6))
	var r rankState
	rankHistory(&r, &rates, 4000, func() float64 { return 1 + 0.05*rng.NormFloat64() })
	require.Greater(t, r.q, float32(0.8), "the quantile of a regular stream")
	for i := 1; i <= 120; i++ {
		require.Zero(t, r.judge(&rates, int64(4000+i), 75, 100, 100), "bucket %d of the dip", i)
	}
}

// The quantile learns every bucket, also inside a low run: a fresh test
// (q starts at ½) on a stream whose counts sit at 0.3 of the expectation
// from its first bucket, as a profile that over-predicts does, finds its
// quantile below them within 30 buckets and ends the run there. Learned only
// at the run's end, q stayed at ½ and the run went on to the counter's cap,
// teaching P(low | ≥ 17 low) ≈ 1: the test blind to long losses.
func TestQuantileLearnsInsideALowRun(t *testing.T) {
	rates := newRankRates(288)
	rng := rand.New(rand.NewPCG(7, 8))
	var r rankState
	rankHistory(&r, &rates, 30, func() float64 { return 0.3 * math.Exp(0.1*rng.NormFloat64()) })
	require.Less(t, r.q, float32(0.3), "the quantile after 30 buckets")
	rankHistory(&r, &rates, 300, func() float64 { return 0.3 * math.Exp(0.1*rng.NormFloat64()) })
	require.Less(t, r.p[rankClass(17)], float32(0.9), "P(low | ≥ 17 low)")
}
