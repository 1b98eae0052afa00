package live

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// partialSink lands the first half of the first publication of several
// alerts, then fails it: a batch spread over partitions of which some
// acknowledged.
type partialSink struct {
	fakeSink
	tripped bool
}

func (s *partialSink) Publish(ctx context.Context, alerts []storage.Alert) error {
	if !s.tripped && len(alerts) > 1 {
		s.tripped = true
		if err := s.fakeSink.Publish(ctx, alerts[:len(alerts)/2]); err != nil {
			return err
		}
		return errors.New("2 of 4 partitions failed")
	}
	return s.fakeSink.Publish(ctx, alerts)
}

// A publication that fails after part of it landed is retried with only what
// is not on the topic: every event once (issue 18: the retry used to publish
// the whole step again).
func TestPartlyFailedPublicationIsNotDoubled(t *testing.T) {
	ctx := context.Background()
	p := &pipeline{st: memstore.New(0)}
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	all := map[string]uint64{"a": 300, "b": 300, "c": 300, "d": 300, "e": 300, "f": 300, "g": 300, "h": 300}
	rest := map[string]uint64{"a": 300, "e": 300, "f": 300, "g": 300, "h": 300}
	for i := range 30 {
		p.minute(t, t0.Add(time.Duration(i)*time.Minute), all)
	}
	sink := &partialSink{}
	d := newDetector(t, p, sink)
	for i := 30; i < 34; i++ { // b, c and d stop together (under half: each alerted); the rest go on
		p.minute(t, t0.Add(time.Duration(i)*time.Minute), rest)
		require.NoError(t, d.tick(ctx))
	}
	require.True(t, sink.tripped, "a step published several alerts at once")
	opened := sink.ofType(detect.TypeGapOpened)
	require.Len(t, opened, 3, "b, c and d, once each: %+v", opened)
	seen := map[string]int{}
	for _, a := range sink.log {
		seen[a.ID]++
		require.Equal(t, 1, seen[a.ID], "%s published twice", a.ID)
	}
}
