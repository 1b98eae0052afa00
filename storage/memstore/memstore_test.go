package memstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/memstore"
	"github.com/gapwatch/gapwatch/storage/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, memstore.New(30*24*time.Hour))
}

func TestAlertConformance(t *testing.T) {
	storetest.RunAlerts(t, memstore.New(0))
}

func TestExpectationConformance(t *testing.T) {
	storetest.RunExpectations(t, memstore.New(0))
}

func TestExpectationsRetention(t *testing.T) {
	s := memstore.New(time.Hour)
	ctx := context.Background()
	base := storetest.Base
	x := func(at time.Time) storage.Expectation {
		return storage.Expectation{Tenant: "t", Source: "s", Bucket: at.Unix(), Expected: 2, Lower: 1, Upper: 3, Observed: 2, State: "ok"}
	}
	q := storage.RateQuery{Tenant: "t", Source: "s", From: base, To: base.Add(4 * time.Hour), Step: time.Hour}
	require.NoError(t, s.WriteExpectations(ctx, []storage.Expectation{x(base), x(base.Add(time.Hour))}))
	bands, err := s.Bands(ctx, q)
	require.NoError(t, err)
	require.Len(t, bands, 2)
	// Counts moving the window past base forget its expectation ...
	require.NoError(t, s.Write(ctx, storage.Batch{Counts: []storage.Count{
		{Tenant: "t", Source: "s", Clock: storage.Arrival, Bucket: base.Add(90 * time.Minute).Unix(), Events: 1}}}))
	bands, err = s.Bands(ctx, q)
	require.NoError(t, err)
	require.Equal(t, []storage.Band{{I: 1, Expected: 2, Lower: 1, Upper: 3, Observed: 2, Buckets: 1}}, bands)
	// ... and so do later expectations.
	require.NoError(t, s.WriteExpectations(ctx, []storage.Expectation{x(base.Add(3 * time.Hour))}))
	bands, err = s.Bands(ctx, q)
	require.NoError(t, err)
	require.Equal(t, []storage.Band{{I: 3, Expected: 2, Lower: 1, Upper: 3, Observed: 2, Buckets: 1}}, bands)
}

func TestRetentionWindow(t *testing.T) {
	s := memstore.New(time.Hour)
	ctx := context.Background()
	base := storetest.Base
	write := func(at time.Time) {
		require.NoError(t, s.Write(ctx, storage.Batch{Counts: []storage.Count{
			{Tenant: "t", Source: "s", Clock: storage.Arrival, Bucket: at.Unix(), Events: 1}}}))
	}
	write(base)
	write(base.Add(3 * time.Hour)) // moves the window past base
	pts, err := s.Rates(ctx, storage.RateQuery{Tenant: "t", Source: "s", From: base, To: base.Add(4 * time.Hour), Step: time.Hour})
	require.NoError(t, err)
	require.Equal(t, []uint64{0, 0, 0, 1}, []uint64{pts[0].Events, pts[1].Events, pts[2].Events, pts[3].Events})
}

func TestSilenceConformance(t *testing.T) {
	storetest.RunSilences(t, memstore.New(0))
}

func TestStreamNamesConformance(t *testing.T) {
	storetest.RunStreamNames(t, memstore.New(0))
}
