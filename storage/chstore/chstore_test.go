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
