package live

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/storage/memstore"
)

// Every live step's judging is timed: one advance observation per step that
// judged buckets, on the registry the detector was given.
func TestJudgingTimeIsMeasured(t *testing.T) {
	ctx := context.Background()
	p := &pipeline{st: memstore.New(0)}
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for i := range 30 {
		p.minute(t, t0.Add(time.Duration(i)*time.Minute), map[string]uint64{"a": 300})
	}
	reg := prometheus.NewRegistry()
	d := newDetectorOn(t, p, &fakeSink{}, func(*Config) {}, reg)
	for i := 30; i < 35; i++ {
		p.minute(t, t0.Add(time.Duration(i)*time.Minute), map[string]uint64{"a": 300})
		require.NoError(t, d.tick(ctx))
	}
	families, err := reg.Gather()
	require.NoError(t, err)
	samples := map[string]uint64{}
	for _, f := range families {
		if f.GetName() != "gapwatch_detect_judge_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			samples[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
		}
	}
	require.Equal(t, uint64(5), samples["advance"], "one observation per step that judged a bucket")
}
