package chstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/internal/servers"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/chstore"
	"github.com/gapwatch/gapwatch/storage/storetest"
)

func TestConformance(t *testing.T) {
	s, _ := servers.ClickHouse(t)
	storetest.Run(t, s)
}

func TestAlertConformance(t *testing.T) {
	s, _ := servers.ClickHouse(t)
	storetest.RunAlerts(t, s)
}

func TestExpectationConformance(t *testing.T) {
	s, _ := servers.ClickHouse(t)
	storetest.RunExpectations(t, s)
}

func TestMigrateIsIdempotent(t *testing.T) {
	s, _ := servers.ClickHouse(t)
	ctx := context.Background()
	applied, err := s.Migrate(ctx)
	require.NoError(t, err)
	require.Empty(t, applied, "a second migrate applies nothing")
	v, err := s.SchemaVersion(ctx)
	require.NoError(t, err)
	require.Equal(t, chstore.LatestVersion(), v)
	require.NoError(t, s.CheckSchema(ctx))
}

func TestCheckSchemaWithoutMigrate(t *testing.T) {
	servers.Required(t)
	ctx := context.Background()
	s, err := chstore.Open(ctx, chstore.Config{Database: servers.Unique("gapwatch_unmigrated")}, nil)
	require.NoError(t, err)
	defer s.Close()
	require.ErrorContains(t, s.CheckSchema(ctx), "gapwatch migrate")
}

func TestRetentionDropsOldPartitions(t *testing.T) {
	s, cfg := servers.ClickHouse(t)
	ctx := context.Background()
	b := storetest.Batches()[0]
	require.NoError(t, s.Write(ctx, b))
	q := storage.RateQuery{Tenant: "acme", Source: "firewall", From: storetest.Base, To: storetest.Base.Add(2 * time.Hour), Step: time.Hour}
	before, err := s.Rates(ctx, q)
	require.NoError(t, err)
	require.NotZero(t, before[0].Events)

	// Today's partition is within retention now ...
	n, err := s.EnforceRetention(ctx, time.Now())
	require.NoError(t, err)
	require.Zero(t, n)
	// ... and past it for raw counts, but not for the hourly rollup, later.
	later := time.Now().AddDate(0, 0, cfg.RetentionDays+2)
	n, err = s.EnforceRetention(ctx, later)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	offsets, err := s.Offsets(ctx, "logs")
	require.NoError(t, err)
	require.Empty(t, offsets, "progress rows age out with their day")
	hourly, err := s.Rates(ctx, q) // whole hours: answered from the rollup
	require.NoError(t, err)
	require.Equal(t, before, hourly)
	q.Step = time.Minute
	raw, err := s.Rates(ctx, q)
	require.NoError(t, err)
	for _, p := range raw {
		require.Zero(t, p.Events)
	}
}

// Expectations are kept RetentionDays by the day of their bucket, whenever
// they were written.
func TestRetentionDropsOldExpectations(t *testing.T) {
	s, cfg := servers.ClickHouse(t)
	ctx := context.Background()
	now := time.Now().UTC()
	old := now.AddDate(0, 0, -cfg.RetentionDays-2).Truncate(time.Hour)
	recent := now.AddDate(0, 0, -cfg.RetentionDays+1).Truncate(time.Hour)
	x := func(at time.Time) storage.Expectation {
		return storage.Expectation{Tenant: "acme", Source: "fw", Bucket: at.Unix(), Expected: 3, Lower: 1, Upper: 5, Observed: 2, State: "ok"}
	}
	require.NoError(t, s.WriteExpectations(ctx, []storage.Expectation{x(old), x(recent)}))
	bands := func(at time.Time) []storage.Band {
		t.Helper()
		b, err := s.Bands(ctx, storage.RateQuery{Tenant: "acme", Source: "fw", From: at, To: at.Add(time.Hour), Step: time.Hour})
		require.NoError(t, err)
		return b
	}
	require.Len(t, bands(old), 1)
	n, err := s.EnforceRetention(ctx, now)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the old bucket's day")
	require.Empty(t, bands(old))
	require.Equal(t, []storage.Band{{I: 0, Expected: 3, Lower: 1, Upper: 5, Observed: 2, Buckets: 1}}, bands(recent))
}

func TestFeaturesOf(t *testing.T) {
	for v, modern := range map[string]bool{"18.16.1": false, "19.17.4.11": false, "20.3.1": true, "24.8.4.13": true, "25.10.1.1-chdb": true} {
		f, err := chstore.FeaturesOf(v)
		require.NoError(t, err, v)
		require.Equal(t, modern, f.Modern, v)
	}
	_, err := chstore.FeaturesOf("banana")
	require.Error(t, err)
}

func TestSilenceConformance(t *testing.T) {
	s, _ := servers.ClickHouse(t)
	storetest.RunSilences(t, s)
}

func TestStreamNamesConformance(t *testing.T) {
	s, _ := servers.ClickHouse(t)
	storetest.RunStreamNames(t, s)
}
