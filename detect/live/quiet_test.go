package live

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/storage"
)

// arrivals are stored arrival-clock counts, for the rollup alone.
type arrivals struct {
	counts []storage.StreamCount
	fail   bool
}

func (a *arrivals) BucketCounts(_ context.Context, _ storage.Clock, from, to time.Time) ([]storage.StreamCount, error) {
	if a.fail {
		return nil, errors.New("store down")
	}
	var out []storage.StreamCount
	for _, c := range a.counts {
		if c.Bucket >= from.Unix() && c.Bucket < to.Unix() {
			out = append(out, c)
		}
	}
	return out, nil
}

// The input-quiet rollup alone (case b): three streams' silences start
// together and nothing arrives: one input_quiet, their gaps suppressed; a
// failed read changes nothing; events arrive again: input_resumed; the gaps
// still open resolve_after and a bucket later are published then.
func TestQuietRollupAlone(t *testing.T) {
	ctx := context.Background()
	in := &arrivals{}
	q := newQuietRollup(60, 2*time.Minute, in, func(typ string, at time.Time, data pipelineData) storage.Alert {
		return storage.Alert{Type: typ, Time: at, Key: data.State}
	})
	gap := func(typ, source string, at int64) detect.Event {
		return detect.Event{Type: typ, Time: time.Unix(at, 0), GapID: source, Tenant: "t", Source: source, Kind: detect.KindSilence,
			StartedAt: time.Unix(600, 0), DetectedAt: time.Unix(720, 0)}
	}
	step := func(at int64, events ...detect.Event) ([]string, error) {
		gaps := make([]storage.Alert, len(events))
		for i, ev := range events {
			gaps[i] = gapAlert(ev)
		}
		out, err := q.rollUp(ctx, events, gaps, 10, at)
		var got []string
		for _, a := range out {
			got = append(got, fmt.Sprintf("%d %s %s %s suppressed=%t", a.Time.Unix(), a.Type, a.Key, a.Source, a.Suppressed))
		}
		return got, err
	}
	opened := []detect.Event{gap(detect.TypeGapOpened, "a", 720), gap(detect.TypeGapOpened, "b", 720), gap(detect.TypeGapOpened, "c", 720)}
	in.fail = true
	_, err := step(720, opened...)
	require.Error(t, err)
	require.Zero(t, q.from, "a failed read leaves the state as it was")
	require.Empty(t, q.silent)
	in.fail = false
	got, err := step(720, opened...)
	require.NoError(t, err)
	require.Equal(t, []string{
		"720 " + TypePipelineDegraded + " input_quiet  suppressed=false",
		"720 " + detect.TypeGapOpened + " t/a a suppressed=true",
		"720 " + detect.TypeGapOpened + " t/b b suppressed=true",
		"720 " + detect.TypeGapOpened + " t/c c suppressed=true",
	}, got)

	in.counts = append(in.counts, storage.StreamCount{Tenant: "t", Source: "x", Bucket: 840, Events: 5, First: 845})
	got, err = step(900, gap(detect.TypeGapResolved, "b", 900))
	require.NoError(t, err)
	require.Equal(t, []string{
		"845 " + TypePipelineDegraded + " input_resumed  suppressed=false",
		"900 " + detect.TypeGapResolved + " t/b b suppressed=true",
	}, got)

	got, err = step(960)
	require.NoError(t, err)
	require.Empty(t, got, "resolve_after and a bucket have not passed since 845")
	got, err = step(1080)
	require.NoError(t, err)
	require.Equal(t, []string{
		"720 " + detect.TypeGapOpened + " t/a a suppressed=false",
		"720 " + detect.TypeGapOpened + " t/c c suppressed=false",
	}, got, "the stragglers, published late")
	require.Zero(t, q.from, "the episode is over")
}
