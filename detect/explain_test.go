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

// Explain returns every judged bucket of the named stream, and only its, in
// order, without changing a decision; each gap opens at a bucket whose
// explanation shows its test over the threshold, and no bucket judged ok
// shows one over it.
func TestExplainShowsWhyGapsOpen(t *testing.T) {
	const days = 21
	lossFrom, lossLen := 18*288+9*12, 36        // 70 % lost, Thursday 09:00–12:00
	silenceFrom, silenceLen := 19*288+14*12, 12 // nothing, Friday 14:00–15:00
	plain, err := New(Config{Bucket: 5 * time.Minute, Workers: 2})
	require.NoError(t, err)
	explained, err := New(Config{Bucket: 5 * time.Minute, Workers: 2})
	require.NoError(t, err)
	explained.Explain("t", "s")
	r := rand.New(rand.NewPCG(7, 19))
	var opened, events []Event
	var ex []Explanation
	for i := range days * 288 {
		b := rhythmMonday + int64(i)*300
		m := 40 * (1 + 0.6*math.Sin(2*math.Pi*float64(i%288)/288))
		n := simulate.GammaPoisson(r, m, 0.05)
		switch {
		case i >= lossFrom && i < lossFrom+lossLen:
			n = uint64(math.Round(0.3 * float64(n)))
		case i >= silenceFrom && i < silenceFrom+silenceLen:
			n = 0
		}
		cs := []storage.Count{{Tenant: "t", Source: "s", Bucket: b, Events: n}, {Tenant: "t", Source: "other", Bucket: b, Events: 10}}
		p := plain.Advance(time.Unix(b+300, 0), cs)
		res := explained.Advance(time.Unix(b+300, 0), cs)
		require.Equal(t, p.Events, res.Events, "bucket %d: explaining changed a decision", i)
		events = append(events, res.Events...)
		ex = append(ex, res.Explanations...)
	}
	require.Len(t, ex, days*288, "one explanation per judged bucket of t/s, none of t/other")
	for i, e := range ex {
		require.Equal(t, time.Unix(rhythmMonday+int64(i)*300, 0).UTC(), e.Bucket)
	}
	for _, ev := range events {
		if ev.Type == TypeGapOpened && ev.Source == "s" {
			opened = append(opened, ev)
		}
	}
	require.Len(t, opened, 2, "the loss and the silence")
	at := func(ev Event) Explanation { return ex[(ev.DetectedAt.Unix()-300-rhythmMonday)/300] }
	drop := at(opened[0])
	require.Equal(t, KindDrop, opened[0].Kind)
	require.Equal(t, "drop", drop.State)
	require.Greater(t, max(drop.Drop50, drop.Drop75, drop.Rank), drop.DropThreshold, "%+v", drop)
	require.Positive(t, max(drop.Drop50Raw, drop.Drop75Raw), "the CUSUMs before the run correction: %+v", drop)
	require.Equal(t, KindSilence, opened[1].Kind)
	silence := at(opened[1])
	require.Equal(t, "gap", silence.State)
	require.Positive(t, silence.SilenceRun, "%+v", silence)
	require.Less(t, silence.SilenceLogP, silence.SilenceThreshold, "%+v", silence)
	for _, e := range ex {
		if e.State != "ok" {
			continue
		}
		require.LessOrEqual(t, max(e.Drop50, e.Drop75, e.Rank), e.DropThreshold, "%+v", e)
		require.GreaterOrEqual(t, e.SilenceLogP, e.SilenceThreshold, "%+v", e)
		require.Positive(t, e.Expected, "%+v", e)
	}
}
