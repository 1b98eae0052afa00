package main

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/simulate"
)

// The replay of a missed loss reports how near its drop tests came, agrees
// with the benchmark's engine about what it found, and tells a loss that
// began inside an open gap from one the tests did not see.
func TestEscape(t *testing.T) {
	const w = 300
	day := 86400 / w
	r := rand.New(rand.NewPCG(7, 7))
	series := make([]uint64, 28*day)
	for i := range series {
		// Noise of dispersion 0.2 around 200 a bucket: a 55 % loss of
		// three buckets sits inside it.
		series[i] = simulate.GammaPoisson(r, 200, 0.2)
	}
	ds := &dataset{name: "t", group: "g", width: w, start: 4 * 86400, warm: 14 * day, n: len(series)}
	trialWith := func(name string, inj injection, loss func(i int) float64) *trial {
		tr := &trial{name: name, counts: slices.Clone(series), inj: inj}
		for i := range tr.counts {
			tr.counts[i] = uint64(float64(tr.counts[i]) * (1 - loss(i)))
		}
		return tr
	}
	at := 21 * day
	mild := trialWith("mild", injection{kind: detect.KindDrop, start: at, end: at + 3, loss: 0.55, missing: 330},
		func(i int) float64 { return 0.55 * b2f(i >= at && i < at+3) })
	heavy := trialWith("heavy", injection{kind: detect.KindDrop, start: at, end: at + 72, loss: 0.95, missing: 13000},
		func(i int) float64 { return 0.95 * b2f(i >= at && i < at+72) })
	// A 95 % loss from day 21 whose second half-day is labelled the trial's
	// loss: the gap the first opened is still open when it begins.
	inside := trialWith("inside", injection{kind: detect.KindDrop, start: at + 144, end: at + 150, loss: 0.95, missing: 1100},
		func(i int) float64 { return 0.95 * b2f(i >= at && i < at+288) })
	ds.trials = []*trial{mild, heavy, inside}
	require.NoError(t, ds.run(detect.Config{}))

	found := func(tr *trial) bool {
		sc := newScore()
		ds.scoreInto(sc, tr, tr.alerts)
		return sc.found[detect.KindDrop] > 0
	}
	require.False(t, found(mild), "the mild loss is one gapwatch misses")
	peak, inGap, differs, err := ds.escape(mild)
	require.NoError(t, err)
	require.False(t, inGap)
	require.False(t, differs, "the replay decides as the engine did")
	require.Greater(t, peak, 0.0, "the loss left some evidence")
	require.Less(t, peak, 1.0, "and not enough to open a gap")

	require.True(t, found(heavy))
	_, inGap, differs, err = ds.escape(heavy)
	require.NoError(t, err)
	require.False(t, inGap)
	require.True(t, differs, "the replay opens the gap the engine opened")

	require.False(t, found(inside), "one gap per stream: the loss inside it opens none")
	_, inGap, differs, err = ds.escape(inside)
	require.NoError(t, err)
	require.True(t, inGap)
	require.False(t, differs)
}

// Missed losses go to the band of their peak evidence, or apart when they
// began inside an open gap.
func TestEscapeBands(t *testing.T) {
	es := &escapes{bands: make([]int, len(escapeBands))}
	for _, p := range []float64{0.1, 0.49, 0.5, 0.74, 0.8, 0.9, 0.99} {
		es.add(p, false, false)
	}
	es.add(0.95, true, false)
	es.add(0.2, false, true)
	require.Equal(t, 9, es.missed)
	require.Equal(t, 1, es.inGap)
	require.Equal(t, 1, es.differs)
	require.Equal(t, []int{3, 2, 1, 2}, es.bands)
	require.Len(t, es.peaks, 8, "a loss in an open gap has no peak of its own")
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
