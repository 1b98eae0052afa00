package storetest

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/storage"
)

// StreamStore is what RunStreamNames exercises.
type StreamStore interface {
	Write(ctx context.Context, b storage.Batch) error
	Offsets(ctx context.Context, topic string) (map[int32]storage.Offset, error)
	StreamNames(ctx context.Context, q storage.StreamQuery) ([]storage.StreamName, bool, error)
}

// RunStreamNames checks the stream listing (hostile names, order, tenant
// filter, the bound) and the ingest watermark over stored progress, on an
// empty store.
func RunStreamNames(t *testing.T, s StreamStore) {
	ctx := context.Background()
	t.Run("watermark before any progress", func(t *testing.T) {
		wm, unknown, err := storage.IngestWatermark(ctx, s, []string{"logs"}, map[string][]int32{"logs": {0, 1}})
		require.NoError(t, err)
		require.True(t, wm.IsZero())
		require.Equal(t, "no progress stored for logs/0 (is ingest running?)", unknown)
	})
	empty, more, err := s.StreamNames(ctx, storage.StreamQuery{})
	require.NoError(t, err)
	require.False(t, more)
	require.Empty(t, empty)
	require.NotNil(t, empty, "an empty list, not null")

	for _, b := range Batches() {
		require.NoError(t, s.Write(ctx, b))
	}
	// A hostile source, and a stream that only ever had event-clock counts.
	require.NoError(t, s.Write(ctx, storage.Batch{Counts: []storage.Count{
		{Tenant: "acme", Source: `fw'); DROP TABLE counts; --`, Clock: storage.Arrival, Bucket: Base.Unix(), Events: 1},
		{Tenant: "acme", Source: "Ωmega\x00nul", Clock: storage.Event, Bucket: Base.Unix(), Events: 1},
	}}))
	var want []storage.StreamName
	for _, tenant := range Tenants {
		want = append(want, storage.StreamName{Tenant: tenant, Source: "SignInLogs"}, storage.StreamName{Tenant: tenant, Source: "firewall"})
	}
	want = append(want, storage.StreamName{Tenant: "acme", Source: `fw'); DROP TABLE counts; --`},
		storage.StreamName{Tenant: "acme", Source: "Ωmega\x00nul"})
	slices.SortFunc(want, func(a, b storage.StreamName) int {
		return cmp.Or(strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.Source, b.Source))
	})

	t.Run("all", func(t *testing.T) {
		got, more, err := s.StreamNames(ctx, storage.StreamQuery{})
		require.NoError(t, err)
		require.False(t, more)
		require.Equal(t, want, got, "sorted by tenant then source, bytewise")
	})
	t.Run("one tenant", func(t *testing.T) {
		for _, tenant := range Tenants {
			got, more, err := s.StreamNames(ctx, storage.StreamQuery{Tenant: tenant})
			require.NoError(t, err)
			require.False(t, more)
			var w []storage.StreamName
			for _, n := range want {
				if n.Tenant == tenant {
					w = append(w, n)
				}
			}
			require.Equal(t, w, got, tenant)
		}
		got, more, err := s.StreamNames(ctx, storage.StreamQuery{Tenant: "x'"})
		require.NoError(t, err)
		require.False(t, more)
		require.Empty(t, got, "a prefix of a hostile tenant matches nothing")
	})
	t.Run("bounded", func(t *testing.T) {
		got, more, err := s.StreamNames(ctx, storage.StreamQuery{Limit: 3})
		require.NoError(t, err)
		require.True(t, more, "cut, and says so")
		require.Equal(t, want[:3], got)
		got, more, err = s.StreamNames(ctx, storage.StreamQuery{Limit: len(want)})
		require.NoError(t, err)
		require.False(t, more, "exactly the limit is not cut")
		require.Equal(t, want, got)
		_, _, err = s.StreamNames(ctx, storage.StreamQuery{Limit: storage.MaxStreamNames + 1})
		require.True(t, errors.Is(err, storage.ErrBadQuery), "%v", err)
	})
	t.Run("watermark", func(t *testing.T) {
		// Batches stored partitions 0..2 of logs, the lowest watermark on 1 (Base+1m).
		wm, unknown, err := storage.IngestWatermark(ctx, s, []string{"logs"}, map[string][]int32{"logs": {0, 1, 2}})
		require.NoError(t, err)
		require.Empty(t, unknown)
		require.True(t, wm.Equal(Base.Add(time.Minute)), "%v", wm)
		// Over two topics: the lower of both ("other" has no watermark yet).
		_, unknown, err = storage.IngestWatermark(ctx, s, []string{"logs", "other"}, map[string][]int32{"logs": {0, 1, 2}, "other": {0}})
		require.NoError(t, err)
		require.Equal(t, "no progress stored for other/0 (is ingest running?)", unknown)
		require.NoError(t, s.Write(ctx, storage.Batch{Offsets: []storage.Offset{{Topic: "other", Partition: 0, Next: 11, ArrivalHW: Base.Add(30 * time.Second)}}}))
		wm, unknown, err = storage.IngestWatermark(ctx, s, []string{"logs", "other"}, map[string][]int32{"logs": {0, 1, 2}, "other": {0}})
		require.NoError(t, err)
		require.Empty(t, unknown)
		require.True(t, wm.Equal(Base.Add(30*time.Second)), "%v", wm)
		// A partition that Kafka has and storage does not holds it unknown.
		_, unknown, err = storage.IngestWatermark(ctx, s, []string{"logs"}, map[string][]int32{"logs": {0, 1, 2, 3}})
		require.NoError(t, err)
		require.Equal(t, "no progress stored for logs/3 (is ingest running?)", unknown)
		_, unknown, err = storage.IngestWatermark(ctx, s, []string{"logs"}, map[string][]int32{})
		require.NoError(t, err)
		require.Equal(t, "input topic logs has no partitions", unknown)
	})
}
