package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/storage"
)

// AlertStore is what the alert conformance test exercises.
type AlertStore interface {
	WriteAlerts(ctx context.Context, b storage.AlertBatch) error
	DetectProgress(ctx context.Context, shard, shards int) (storage.DetectProgress, bool, error)
	BatchAlerts(ctx context.Context, shard, shards int, seq uint64) ([]storage.Alert, error)
	Gaps(ctx context.Context, q storage.GapQuery) ([]storage.Gap, error)
}

func gapAlert(typ, gapID, tenant string, seq uint32, started, at time.Time, ended time.Time, expected, observed float64) storage.Alert {
	return storage.Alert{
		ID: gapID + "-" + typ, Type: typ, Time: at, Key: tenant + "/fw", Payload: []byte(`{"id":"` + gapID + `"}`),
		GapID: gapID, Tenant: tenant, Source: "fw", Kind: "silence",
		StartedAt: started, DetectedAt: started.Add(2 * time.Minute), EndedAt: ended,
		Expected: expected, Observed: observed, Missing: expected - observed, Seq: seq,
	}
}

// RunAlerts checks the detector's alert record: progress per shard, the alerts
// of a step in order, and gaps folded from their lifecycle, with hostile names.
func RunAlerts(t *testing.T, s AlertStore) {
	ctx := context.Background()
	_, ok, err := s.DetectProgress(ctx, 0, 1)
	require.NoError(t, err)
	require.False(t, ok, "no progress before the first step")

	t1 := Base.Add(10 * time.Minute)
	evil := Tenants[1]
	steps := []storage.AlertBatch{
		{DetectProgress: storage.DetectProgress{Shard: 0, Shards: 1, Seq: 1, Watermark: t1, AlertOffsets: []int64{0, 0, 0}},
			Alerts: []storage.Alert{
				gapAlert("io.gapwatch.gap.opened", "g1", "acme", 0, Base, t1, time.Time{}, 100, 0),
				gapAlert("io.gapwatch.gap.opened", "g2", evil, 0, Base.Add(time.Minute), t1, time.Time{}, 50, 5),
			}},
		{DetectProgress: storage.DetectProgress{Shard: 0, Shards: 1, Seq: 2, Watermark: t1.Add(time.Hour), AlertOffsets: []int64{1, 0, 1}},
			Alerts: []storage.Alert{
				gapAlert("io.gapwatch.gap.updated", "g1", "acme", 1, Base, t1.Add(30*time.Minute), time.Time{}, 300, 0),
				gapAlert("io.gapwatch.gap.resolved", "g2", evil, 1, Base.Add(time.Minute), t1.Add(time.Hour), t1.Add(40*time.Minute), 400, 40),
				{ID: "p1", Type: "io.gapwatch.pipeline.degraded", Time: t1.Add(time.Hour), Key: "pipeline", Payload: []byte(`{}`)},
			}},
		// Another shard's step, and a replica's duplicate of step 2's resolve.
		{DetectProgress: storage.DetectProgress{Shard: 1, Shards: 2, Seq: 7, Watermark: t1}},
		{DetectProgress: storage.DetectProgress{Shard: 1, Shards: 2, Seq: 8, Watermark: t1},
			Alerts: []storage.Alert{gapAlert("io.gapwatch.gap.resolved", "g2", evil, 1, Base.Add(time.Minute), t1.Add(time.Hour), t1.Add(40*time.Minute), 400, 40)}},
	}
	steps[0].Alerts[0].Planned = true // g1 began inside a maintenance window
	steps[0].Alerts[0].Kind = "drop"  // and became a silence with its update
	steps[0].Alerts[1].Suppressed = true
	for _, b := range steps {
		require.NoError(t, s.WriteAlerts(ctx, b))
	}

	p, ok, err := s.DetectProgress(ctx, 0, 1)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, uint64(2), p.Seq)
	require.True(t, p.Watermark.Equal(t1.Add(time.Hour)), "watermark %v", p.Watermark)
	require.Equal(t, []int64{1, 0, 1}, p.AlertOffsets)
	p, ok, err = s.DetectProgress(ctx, 1, 2)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, uint64(8), p.Seq)

	got, err := s.BatchAlerts(ctx, 0, 1, 2)
	require.NoError(t, err)
	require.Len(t, got, 3)
	for i, want := range steps[1].Alerts {
		require.Equal(t, want.ID, got[i].ID)
		require.Equal(t, want.Type, got[i].Type)
		require.Equal(t, want.Key, got[i].Key)
		require.Equal(t, string(want.Payload), string(got[i].Payload))
		require.True(t, want.Time.Equal(got[i].Time))
	}

	gaps := func(q storage.GapQuery) []string {
		t.Helper()
		gs, err := s.Gaps(ctx, q)
		require.NoError(t, err)
		ids := []string{}
		for _, g := range gs {
			ids = append(ids, g.ID)
		}
		return ids
	}
	all, err := s.Gaps(ctx, storage.GapQuery{})
	require.NoError(t, err)
	require.Len(t, all, 2)
	g1, g2 := all[0], all[1]
	require.Equal(t, "g1", g1.ID)
	require.True(t, g1.Open())
	require.True(t, g1.Planned)
	require.False(t, all[1].Planned)
	first, err := s.BatchAlerts(ctx, 0, 1, 1)
	require.NoError(t, err)
	require.True(t, first[0].Planned)
	require.False(t, first[1].Planned)
	require.True(t, first[1].Suppressed)
	require.False(t, first[0].Suppressed)
	require.Equal(t, 300.0, g1.Expected, "latest lifecycle step wins")
	require.Equal(t, "silence", g1.Kind, "the latest kind: a drop that became a silence")
	require.Equal(t, "g2", g2.ID)
	require.Equal(t, evil, g2.Tenant)
	require.True(t, g2.EndedAt.Equal(t1.Add(40*time.Minute)), "ended %v", g2.EndedAt)
	require.Equal(t, 360.0, g2.Missing)
	require.True(t, g2.StartedAt.Equal(Base.Add(time.Minute)))
	require.True(t, g2.DetectedAt.Equal(Base.Add(3*time.Minute)))

	require.Equal(t, []string{"g1"}, gaps(storage.GapQuery{State: storage.GapsOpen}))
	require.Equal(t, []string{"g2"}, gaps(storage.GapQuery{State: storage.GapsResolved}))
	require.Equal(t, []string{"g2"}, gaps(storage.GapQuery{Tenant: evil}))
	require.Equal(t, []string{}, gaps(storage.GapQuery{Tenant: evil, Source: "other"}))
	require.Equal(t, []string{"g1"}, gaps(storage.GapQuery{From: t1.Add(40 * time.Minute)}), "g2 ended at from: no overlap")
	require.Equal(t, []string{"g1", "g2"}, gaps(storage.GapQuery{From: t1.Add(39 * time.Minute)}))
	require.Equal(t, []string{"g1"}, gaps(storage.GapQuery{To: Base.Add(time.Minute)}), "g2 starts at to: no overlap")
	require.Equal(t, []string{"g1"}, gaps(storage.GapQuery{Limit: 1}))
	require.Equal(t, []string{"g2"}, gaps(storage.GapQuery{Limit: 1, After: g1.Cursor()}), "the next page")
	require.Equal(t, []string{}, gaps(storage.GapQuery{After: g2.Cursor()}), "past the last")
	require.Equal(t, []string{"g1", "g2"}, gaps(storage.GapQuery{After: storage.GapCursor{StartedAt: g1.StartedAt, ID: "g0"}}),
		"same start, ids after the cursor's")

	_, err = s.Gaps(ctx, storage.GapQuery{State: "closed"})
	require.True(t, errors.Is(err, storage.ErrBadQuery), "bad state: %v", err)

	// g3 resolves with 40 of 400 observed; late data fills it up to 300
	// (two gap.updated after the resolve, one stored twice by a replica).
	t2 := t1.Add(2 * time.Hour)
	fill := func(typ string, seq uint32, at time.Time, observed float64) storage.Alert {
		return gapAlert(typ, "g3", evil, seq, t2, at, t2.Add(20*time.Minute), 400, observed)
	}
	require.NoError(t, s.WriteAlerts(ctx, storage.AlertBatch{DetectProgress: storage.DetectProgress{Shard: 1, Shards: 2, Seq: 9, Watermark: t2},
		Alerts: []storage.Alert{
			gapAlert("io.gapwatch.gap.opened", "g3", evil, 0, t2, t2.Add(2*time.Minute), time.Time{}, 50, 0),
			fill("io.gapwatch.gap.resolved", 1, t2.Add(30*time.Minute), 40),
			fill("io.gapwatch.gap.updated", 2, t2.Add(40*time.Minute), 200),
			fill("io.gapwatch.gap.updated", 3, t2.Add(50*time.Minute), 300),
			fill("io.gapwatch.gap.updated", 3, t2.Add(50*time.Minute), 300),
		}}))
	filled, err := s.Gaps(ctx, storage.GapQuery{From: t2})
	require.NoError(t, err)
	require.Len(t, filled, 2, "g1 (open) and g3")
	g3 := filled[1]
	require.Equal(t, "g3", g3.ID)
	require.Equal(t, 300.0, g3.Observed)
	require.Equal(t, 100.0, g3.Missing)
	require.Equal(t, 40.0, g3.ResolvedObserved)
	require.Equal(t, 260.0, g3.FilledLate())
	require.Zero(t, filled[0].FilledLate(), "open")
	require.Zero(t, filled[0].ResolvedObserved, "open")
	g2again, err := s.Gaps(ctx, storage.GapQuery{Tenant: evil, To: t2})
	require.NoError(t, err)
	require.Len(t, g2again, 1)
	require.Equal(t, 40.0, g2again[0].ResolvedObserved)
	require.Zero(t, g2again[0].FilledLate(), "resolved, never updated")
}

// SilenceStore is what the silence conformance test exercises.
type SilenceStore interface {
	PutSilence(ctx context.Context, s storage.Silence) error
	DeleteSilence(ctx context.Context, id string) (bool, error)
	Silences(ctx context.Context) ([]storage.Silence, error)
}

// RunSilences checks that silences are stored, listed newest first, replaced
// and deleted, with hostile text kept as data.
func RunSilences(t *testing.T, s SilenceStore) {
	ctx := context.Background()
	got, err := s.Silences(ctx)
	require.NoError(t, err)
	require.Empty(t, got)
	a := storage.Silence{ID: "a1", Tenant: Tenants[1], Source: "fw", StartsAt: Base, EndsAt: Base.Add(time.Hour), Comment: "patch'; DROP TABLE x --", Created: Base}
	b := storage.Silence{ID: "b2", Tenant: "acme", StartsAt: Base, EndsAt: Base.Add(2 * time.Hour), Created: Base.Add(time.Minute)}
	require.NoError(t, s.PutSilence(ctx, a))
	require.NoError(t, s.PutSilence(ctx, b))
	got, err = s.Silences(ctx)
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, "b2", got[0].ID, "newest first")
	require.Equal(t, a.Comment, got[1].Comment)
	require.Equal(t, a.Tenant, got[1].Tenant)
	require.True(t, got[1].EndsAt.Equal(a.EndsAt))

	a.EndsAt = Base.Add(3 * time.Hour)
	require.NoError(t, s.PutSilence(ctx, a))
	ok, err := s.DeleteSilence(ctx, "b2")
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = s.DeleteSilence(ctx, "nope")
	require.NoError(t, err)
	require.False(t, ok)
	got, err = s.Silences(ctx)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.True(t, got[0].EndsAt.Equal(Base.Add(3*time.Hour)), "the latest version wins")
}
