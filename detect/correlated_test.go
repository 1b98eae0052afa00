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

// A sparse stream whose rate is shared by the buckets of each half hour (a
// gamma multiplier per 30-minute block, as when a source's activity comes in
// spells): empty runs of half an hour are common, far more common than
// independent buckets of the same mean and dispersion would have them. The
// silence test weighs a run by its sum's dispersion, learned from the
// blocks, so three weeks raise no gap; a silence of six hours still does.
func TestClusteredQuietSpellsAreNotSilences(t *testing.T) {
	const perBucket = 1.5
	e, err := New(Config{Bucket: 5 * time.Minute, Workers: 1})
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(11, 12))
	const days, silenceFrom, silence = 24, 21 * 288, 72
	var opened []Event
	mult := 1.0
	for i := range int64(days * 288) {
		if i%6 == 0 {
			mult = r.ExpFloat64() // a gamma rate of mean 1 and dispersion 1
		}
		b := rhythmMonday + i*300
		var cs []storage.Count
		n := simulate.GammaPoisson(r, perBucket*mult, 0)
		if i >= silenceFrom && i < silenceFrom+silence {
			n = 0
		}
		if n > 0 {
			cs = []storage.Count{{Tenant: "t", Source: "s", Bucket: b, Events: n}}
		}
		for _, ev := range e.Advance(time.Unix(b+300, 0), cs).Events {
			if ev.Type == TypeGapOpened {
				opened = append(opened, ev)
			}
		}
	}
	silenceStart := rhythmMonday + silenceFrom*300
	var found bool
	for _, ev := range opened {
		if ev.StartedAt.Unix() >= silenceStart-3600 && ev.DetectedAt.Unix() <= silenceStart+silence*300 {
			found = true
			continue
		}
		require.Less(t, ev.DetectedAt.Unix(), rhythmMonday+3*86400, "a false silence after warm-up: %+v", ev)
	}
	require.True(t, found, "the six-hour silence was not found: %+v", opened)
}

// A busy, drifting stream loses 85 % of its events for 35 minutes, starting
// in the middle of a 30-minute block, in each of 20 trials. Judged block by
// block, the loss was split over two blocks, each half healthy, and drowned
// in the drift: 10 of 20 were found, all by the partial-silence test
// (a bucket near empty), none as a drop. Judged bucket by bucket (with the
// buckets' correlation allowed for), at least 18 are found within the loss,
// each starting where the loss did, and nothing is raised before it.
func TestShortHeavyDropAcrossBlocks(t *testing.T) {
	const sigma, phi, perBucket = 0.15, 0.95, 2000.0
	lossFrom := int64(21*288 + 3) // 15 minutes into a block
	const lossLen, trials = 7, 20
	found := 0
	for seed := range uint64(trials) {
		e, err := New(Config{Bucket: 5 * time.Minute, Workers: 1})
		require.NoError(t, err)
		r := rand.New(rand.NewPCG(seed, 14))
		z := 0.0
		var opened []Event
		for i := range lossFrom + lossLen + 12 {
			z = phi*z + sigma*math.Sqrt(1-phi*phi)*r.NormFloat64()
			m := perBucket * math.Exp(z-sigma*sigma/2)
			if i >= lossFrom && i < lossFrom+lossLen {
				m *= 0.15
			}
			b := rhythmMonday + i*300
			n := simulate.GammaPoisson(r, m, 0.1)
			for _, ev := range e.Advance(time.Unix(b+300, 0), []storage.Count{{Tenant: "t", Source: "s", Bucket: b, Events: n}}).Events {
				if ev.Type == TypeGapOpened {
					require.GreaterOrEqual(t, ev.DetectedAt.Unix(), rhythmMonday+lossFrom*300, "seed %d: a false alarm: %+v", seed, ev)
					opened = append(opened, ev)
				}
			}
		}
		if len(opened) == 0 || opened[0].DetectedAt.Unix() > rhythmMonday+(lossFrom+lossLen)*300 {
			continue
		}
		found++
		start := (opened[0].StartedAt.Unix()-rhythmMonday)/300 - lossFrom
		switch opened[0].Kind {
		case KindDrop:
			// From where the loss did, or a little before when the buckets just
			// before it happened to be low (the CUSUM's excursion began there).
			require.True(t, start >= -3 && start <= 0, "seed %d: the drop starts %d buckets off", seed, start)
		case KindSilence:
			// A bucket near empty made it a (partial) silence, which starts at
			// the first such bucket.
			require.True(t, start >= 0 && start <= 2, "seed %d: the silence starts %d buckets off", seed, start)
		default:
			t.Fatalf("seed %d: %s", seed, opened[0].Kind)
		}
	}
	require.GreaterOrEqual(t, found, 18, "short heavy losses found within the loss, of %d", trials)
}
