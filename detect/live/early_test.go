package live

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// upTo writes what ingest has stored of minute at up to hw: each stream's
// events of the minute so far, which arrived from 1 s into it, and the
// partition's watermark hw.
func (p *pipeline) upTo(t *testing.T, at, hw time.Time, counts map[string]uint64) {
	var b storage.Batch
	for src, n := range counts {
		b.Counts = append(b.Counts, storage.Count{Tenant: "t", Source: src, Bucket: at.Unix(), Events: n, Arrival: at.Unix() + 1})
	}
	b.Offsets = []storage.Offset{{Topic: "logs", Partition: 0, Next: hw.Unix(), ArrivalHW: hw}}
	require.NoError(t, p.st.Write(context.Background(), b))
	p.now = hw.Add(2 * time.Second)
}

// A busy stream that stops is flagged inside its first empty minute, not at
// its end; a restart right after that peek publishes nothing again and the
// gap goes on with the same id.
func TestEarlySilenceInsideTheBucket(t *testing.T) {
	ctx := context.Background()
	p := &pipeline{st: memstore.New(0)}
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	minute := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	both := map[string]uint64{"a": 300, "b": 300}
	for i := range 30 {
		p.upTo(t, minute(i), minute(i+1), both)
	}
	sink := &fakeSink{}
	d := newDetector(t, p, sink)
	// Minute 30: a goes on, b sends nothing; the watermark passes its slots.
	for _, sec := range []int{10, 20, 35, 50} {
		p.upTo(t, minute(30), minute(30).Add(time.Duration(sec)*time.Second), map[string]uint64{"a": 300 * uint64(sec) / 60})
		require.NoError(t, d.tick(ctx))
	}
	opened := sink.ofType(detect.TypeGapOpened)
	require.Len(t, opened, 1)
	require.Equal(t, "t/b", opened[0].Key)
	require.True(t, opened[0].StartedAt.Equal(minute(30)))
	require.True(t, opened[0].DetectedAt.Before(minute(30).Add(50*time.Second)), "detected at %s", opened[0].DetectedAt)
	prog, ok, err := p.st.DetectProgress(ctx, 0, 1)
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, prog.Watermark.After(minute(30)), "the peek is a step of its own: %s", prog.Watermark)

	// A restart: the peek's gap is rebuilt, not published again.
	d = newDetector(t, p, sink)
	for i := 30; i < 60; i++ {
		counts := both
		if i < 33 {
			counts = map[string]uint64{"a": 300}
		}
		p.upTo(t, minute(i), minute(i+1), counts)
		require.NoError(t, d.tick(ctx))
	}
	require.Len(t, sink.ofType(detect.TypeGapOpened), 1)
	resolved := sink.ofType(detect.TypeGapResolved)
	require.Len(t, resolved, 1)
	require.Equal(t, opened[0].GapID, resolved[0].GapID)
	require.True(t, resolved[0].DetectedAt.Equal(opened[0].DetectedAt))
}
