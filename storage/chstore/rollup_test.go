package chstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/storage"
)

// openUnmigrated opens a fresh database on the test server (make services),
// dropped at the end; nothing is created in it yet.
func openUnmigrated(t *testing.T) *Store {
	t.Helper()
	if os.Getenv("GAPWATCH_INTEGRATION") == "" {
		t.Skip("integration test: run `make test` (or set GAPWATCH_INTEGRATION=1 after `make services`)")
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	cfg := Config{Database: "gapwatch_rollup_" + hex.EncodeToString(suffix[:]), Addr: os.Getenv("GAPWATCH_CLICKHOUSE_ADDR")}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, cfg, slog.Default())
	require.NoError(t, err, "ClickHouse is not answering (run `make services`)")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Exec(ctx, "DROP DATABASE IF EXISTS "+s.db); err != nil {
			t.Logf("dropping %s: %v", s.db, err)
		}
		s.Close()
	})
	return s
}

// migrateTo applies the migrations up to version, as an older gapwatch did.
func migrateTo(t *testing.T, s *Store, version int) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, s.conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+s.db))
	require.NoError(t, s.conn.Exec(ctx, s.q(qCreateMigrations)))
	migs, err := Migrations(s.cfg.Database, s.features)
	require.NoError(t, err)
	for _, m := range migs {
		if m.Version > version {
			break
		}
		for _, st := range m.Statements {
			require.NoError(t, s.conn.Exec(ctx, st), m.Name)
		}
		require.NoError(t, s.recordMigration(ctx, m))
	}
}

// insertRaw writes counts rows stamped with write day day, as Write does
// with today's.
func insertRaw(t *testing.T, s *Store, day time.Time, counts ...storage.Count) {
	t.Helper()
	b, err := s.conn.PrepareBatch(context.Background(), s.q(qInsertCounts))
	require.NoError(t, err)
	for _, c := range counts {
		require.NoError(t, b.Append(day, c.Tenant, c.Source, uint8(c.Clock), time.Unix(c.Bucket, 0), c.Events, []uint64{}, "", int32(0), int64(0), time.Unix(0, 0)))
	}
	require.NoError(t, b.Send())
}

// TestRollupUpgradeAndReads: a database the old view rolled up is upgraded;
// whole-hour rates then read each write day from exactly one of counts_hourly
// (the view's days), counts_rollup (days rolled up since) and raw counts (the
// others), through rollups, a second complete rollup of a day, a rollup cut
// short, and retention dropping the raw days.
func TestRollupUpgradeAndReads(t *testing.T) {
	s := openUnmigrated(t)
	ctx := context.Background()
	migrateTo(t, s, 4)

	now := time.Now().UTC()
	today := now.Truncate(24 * time.Hour)
	h0 := today.Add(-30 * 24 * time.Hour).Unix() // buckets are event times: any write day may hold them
	count := func(source string, clock storage.Clock, hour, minute int64, events uint64) storage.Count {
		return storage.Count{Tenant: "acme", Source: source, Clock: clock, Bucket: h0 + hour*3600 + minute*60, Events: events}
	}
	want := map[storage.Clock][]uint64{storage.Arrival: make([]uint64, 3), storage.Event: make([]uint64, 3)}
	add := func(cs ...storage.Count) []storage.Count {
		for _, c := range cs {
			if c.Source == "fw" {
				want[c.Clock][(c.Bucket-h0)/3600] += c.Events
			}
		}
		return cs
	}
	// Before the upgrade, through the view: three days ago (rolled up by the
	// view for good) and yesterday (rolled up again from raw after it).
	insertRaw(t, s, today.AddDate(0, 0, -3), add(count("fw", storage.Arrival, 0, 1, 5), count("fw", storage.Event, 0, 1, 5),
		count("fw", storage.Arrival, 1, 59, 7), count("dns", storage.Arrival, 1, 0, 100))...)
	insertRaw(t, s, today.AddDate(0, 0, -1), add(count("fw", storage.Arrival, 0, 30, 11), count("fw", storage.Event, 2, 0, 13))...)

	_, err := s.Migrate(ctx)
	require.NoError(t, err)
	// After it, today's write: no view any more.
	hourlyRows := func() uint64 {
		var n uint64
		require.NoError(t, s.conn.QueryRow(ctx, s.q("SELECT count() FROM {db}.counts_hourly")).Scan(&n))
		return n
	}
	before := hourlyRows()
	b := storage.Batch{Counts: add(count("fw", storage.Arrival, 2, 10, 17), count("fw", storage.Event, 1, 10, 19)),
		Offsets: []storage.Offset{{Topic: "logs", Partition: 0, Next: 1}}}
	require.NoError(t, s.Write(ctx, b))
	require.Equal(t, before, hourlyRows(), "the view is gone")

	check := func(what string) {
		t.Helper()
		for clock, w := range want {
			q := storage.RateQuery{Tenant: "acme", Source: "fw", Clock: clock, From: time.Unix(h0, 0), To: time.Unix(h0+3*3600, 0), Step: time.Hour}
			pts, err := s.Rates(ctx, q)
			require.NoError(t, err)
			got := make([]uint64, len(pts))
			for i, p := range pts {
				got[i] = p.Events
			}
			require.Equal(t, w, got, "%s: clock %d by hour", what, clock)
		}
	}
	check("upgraded")
	marks, err := s.rollupMarkers(ctx)
	require.NoError(t, err)
	require.Equal(t, []marker{{day: today.AddDate(0, 0, -3).Format(time.DateOnly)}}, marks, "the view's day, not yesterday's")

	n, err := s.Rollup(ctx, today.Add(12*time.Hour))
	require.NoError(t, err)
	require.Equal(t, 1, n, "yesterday; today is not closed")
	check("yesterday rolled up")

	// A rollup cut short leaves rows without a marker: ignored.
	require.NoError(t, s.Exec(ctx, s.q("INSERT INTO {db}.counts_rollup (day, token, tenant, source, clock, hour, events) "+
		"SELECT today(), toUInt64(12345), 'acme', 'fw', toUInt8(0), toDateTime(?), toUInt64(1000)"), h0))
	// Another process rolled up yesterday too, completely: one of the two counts.
	require.NoError(t, s.rollupDay(ctx, today.AddDate(0, 0, -1).Format(time.DateOnly)))
	check("cut short, and rolled up twice")

	later := now.AddDate(0, 0, s.cfg.RetentionDays+3)
	n, err = s.Rollup(ctx, later)
	require.NoError(t, err)
	require.Equal(t, 1, n, "today")
	check("all rolled up")
	n, err = s.EnforceRetention(ctx, later)
	require.NoError(t, err)
	require.Equal(t, 3, n, "the three raw days; the rollups stay")
	check("raw days dropped")
	pts, err := s.Rates(ctx, storage.RateQuery{Tenant: "acme", Source: "fw", From: time.Unix(h0, 0), To: time.Unix(h0+3*3600, 0), Step: time.Minute})
	require.NoError(t, err)
	for _, p := range pts {
		require.Zero(t, p.Events, "raw minutes are gone")
	}
}

// TestRetentionKeepsRawDaysNotRolledUp: a raw day past retention that could
// not be rolled up (here: its rollup fails the check) is kept.
func TestRetentionKeepsRawDaysNotRolledUp(t *testing.T) {
	s := openUnmigrated(t)
	ctx := context.Background()
	_, err := s.Migrate(ctx)
	require.NoError(t, err)
	old := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -s.cfg.RetentionDays-5)
	insertRaw(t, s, old, storage.Count{Tenant: "acme", Source: "fw", Bucket: old.Unix(), Events: 3})
	// A failing rollup: its table is gone.
	require.NoError(t, s.Exec(ctx, s.q("DROP TABLE {db}.counts_rollup")))
	n, err := s.EnforceRetention(ctx, time.Now())
	require.NoError(t, err)
	require.Zero(t, n)
	var rows uint64
	require.NoError(t, s.conn.QueryRow(ctx, s.q("SELECT count() FROM {db}.counts")).Scan(&rows))
	require.Equal(t, uint64(1), rows)
}

// TestRetentionPassMetrics: the pass shows what it rolled up, what is still
// pending and whether it failed.
func TestRetentionPassMetrics(t *testing.T) {
	s := openUnmigrated(t)
	_, err := s.Migrate(context.Background())
	require.NoError(t, err)
	yesterday := time.Now().UTC().Add(-rollupGrace).Truncate(24*time.Hour).AddDate(0, 0, -1)
	insertRaw(t, s, yesterday, storage.Count{Tenant: "acme", Source: "fw", Bucket: yesterday.Unix(), Events: 3})
	pass := func() map[string]float64 {
		t.Helper()
		reg := prometheus.NewRegistry()
		s.metrics = newRetentionMetrics(reg)
		s.retentionPass(context.Background(), time.Now())
		return gather(t, reg)
	}
	got := pass()
	require.Equal(t, 1.0, got["gapwatch_rollup_days_total"])
	require.Zero(t, got["gapwatch_rollup_pending_days"])
	require.Zero(t, got["gapwatch_rollup_failures_total"])

	require.NoError(t, s.Exec(context.Background(), s.q("DROP TABLE {db}.counts_rollup")))
	insertRaw(t, s, yesterday.AddDate(0, 0, -1), storage.Count{Tenant: "acme", Source: "fw", Bucket: yesterday.Unix(), Events: 4})
	got = pass()
	require.Zero(t, got["gapwatch_rollup_days_total"])
	require.Equal(t, 1.0, got["gapwatch_rollup_failures_total"])
	require.Equal(t, 1.0, got["gapwatch_rollup_pending_days"])
	require.Zero(t, got["gapwatch_retention_last_pass_timestamp_seconds"])
}

// gather returns the value of every counter and gauge in reg by name.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			out[mf.GetName()] += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return out
}
