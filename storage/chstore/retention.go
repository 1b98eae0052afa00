package chstore

// Retention and the daily rollup (docs/clickhouse.md), run by the ingest role
// every hour (RunRetention).

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// retentionMetrics are the series of the hourly rollup and retention pass.
type retentionMetrics struct {
	rolled, failures, dropped prometheus.Counter
	pending, lastPass         prometheus.Gauge
}

func newRetentionMetrics(reg prometheus.Registerer) *retentionMetrics {
	m := &retentionMetrics{
		rolled: prometheus.NewCounter(prometheus.CounterOpts{Name: "gapwatch_rollup_days_total",
			Help: "Write days of raw counts this process rolled up into the hourly rollup."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "gapwatch_rollup_failures_total",
			Help: "Rollup passes that failed (the days stay raw and are tried again)."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "gapwatch_retention_partitions_dropped_total",
			Help: "Daily partitions dropped past retention."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gapwatch_rollup_pending_days",
			Help: "Closed write days of raw counts not rolled up yet, after the last pass (above 0: rollups are failing)."}),
		lastPass: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gapwatch_retention_last_pass_timestamp_seconds",
			Help: "When the last rollup and retention pass completed without error (Unix seconds)."}),
	}
	if reg != nil {
		reg.MustRegister(m.rolled, m.failures, m.dropped, m.pending, m.lastPass)
	}
	return m
}

// EnforceRetention rolls up the closed write days (Rollup), then drops the
// daily partitions older than the configured retention — raw counts (only
// once rolled up) and the rollup separately — and returns how many it
// dropped. Progress rows age out with their day; a partition whose stored
// progress is gone resumes from the Kafka-committed offset. Detection's
// expectations are kept as long as raw counts, by the day of their bucket.
func (s *Store) EnforceRetention(ctx context.Context, now time.Time) (int, error) {
	if _, err := s.Rollup(ctx, now); err != nil {
		// Raw days not rolled up are kept below: nothing is lost by going on.
		s.log.Warn("rolling up closed days failed; will retry", "err", err)
		if s.metrics != nil {
			s.metrics.failures.Inc()
		}
	}
	marks, err := s.rollupMarkers(ctx)
	if err != nil {
		return 0, err
	}
	rolled := map[string]bool{}
	for _, m := range marks {
		rolled[m.day] = true
	}
	rows, err := s.conn.Query(ctx, qPartitions, s.cfg.Database)
	if err != nil {
		return 0, fmt.Errorf("listing partitions: %w", err)
	}
	type part struct{ table, id string }
	var old []part
	today := now.UTC().Truncate(24 * time.Hour)
	for rows.Next() {
		var p part
		if err := rows.Scan(&p.table, &p.id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("listing partitions: %w", err)
		}
		day, err := time.Parse("20060102", p.id)
		if err != nil {
			continue // not a partition gapwatch made
		}
		var keep int
		switch p.table {
		case "counts":
			keep = s.cfg.RetentionDays
			if !rolled[day.Format(time.DateOnly)] && day.Before(today.AddDate(0, 0, -keep)) {
				s.log.Warn("keeping raw counts past retention until they are rolled up", "partition", p.id)
				continue
			}
		case "expectations":
			keep = s.cfg.RetentionDays
		case "counts_hourly", "counts_rollup":
			keep = s.cfg.RollupRetentionDays
		default:
			continue // qPartitions lists only the tables above
		}
		if day.Before(today.AddDate(0, 0, -keep)) {
			old = append(old, p)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("listing partitions: %w", err)
	}
	for i, p := range old {
		sql := strings.ReplaceAll(s.q(qDropPartition), "{table}", p.table)
		if err := s.conn.Exec(ctx, sql, p.id); err != nil {
			return i, fmt.Errorf("dropping partition %s of %s: %w", p.id, p.table, err)
		}
		s.log.Info("dropped partition past retention", "table", p.table, "partition", p.id)
		if s.metrics != nil {
			s.metrics.dropped.Inc()
		}
	}
	return len(old), nil
}

// marker is the rollup of one write day (token 0: rolled up by the old view,
// in counts_hourly).
type marker struct {
	day   string // YYYY-MM-DD
	token uint64
}

func (s *Store) rollupMarkers(ctx context.Context) ([]marker, error) {
	rows, err := s.conn.Query(ctx, s.q(qRollupMarkers))
	if err != nil {
		return nil, fmt.Errorf("reading rollup markers: %w", err)
	}
	defer rows.Close()
	var out []marker
	for rows.Next() {
		var m marker
		if err := rows.Scan(&m.day, &m.token); err != nil {
			return nil, fmt.Errorf("reading rollup markers: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Rollup rolls up each closed write day of counts not rolled up yet into
// hourly rows, and returns how many days it rolled up. A day's rows are
// stamped with a fresh token; once all are in and their events add up to the
// day's, a marker names the token. Readers ignore rows without a marker, so a
// rollup cut short (a crash, an error) is simply done again with another token,
// and two processes rolling up the same day both write complete rollups, of
// which readers take one.
func (s *Store) Rollup(ctx context.Context, now time.Time) (int, error) {
	days, err := s.rollupDue(ctx, now)
	if err != nil {
		return 0, err
	}
	for i, day := range days {
		if err := s.rollupDay(ctx, day); err != nil {
			return i, err
		}
		if s.metrics != nil {
			s.metrics.rolled.Inc()
		}
	}
	return len(days), nil
}

// rollupDue returns the closed write days of counts not rolled up yet, in order.
func (s *Store) rollupDue(ctx context.Context, now time.Time) ([]string, error) {
	cutoff := now.UTC().Add(-rollupGrace).Truncate(24 * time.Hour)
	rows, err := s.conn.Query(ctx, s.q(qRollupDue), cutoff.Format(time.DateOnly))
	if err != nil {
		return nil, fmt.Errorf("listing days to roll up: %w", err)
	}
	defer rows.Close()
	var days []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, fmt.Errorf("listing days to roll up: %w", err)
		}
		days = append(days, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing days to roll up: %w", err)
	}
	slices.Sort(days)
	return days, nil
}

func (s *Store) rollupDay(ctx context.Context, day string) error {
	began := time.Now()
	var raw, events uint64
	if err := s.conn.QueryRow(ctx, s.q(qRollupRaw), day).Scan(&raw, &events); err != nil {
		return fmt.Errorf("rolling up %s: %w", day, err)
	}
	var tb [8]byte
	if _, err := rand.Read(tb[:]); err != nil {
		return err
	}
	token := binary.LittleEndian.Uint64(tb[:]) | 1 // never 0: that is the old view's
	parts := max(1, (raw+rollupSliceRows-1)/rollupSliceRows)
	for k := range parts {
		if err := s.conn.Exec(ctx, s.q(qRollupInsert), token, day, parts, k); err != nil {
			return fmt.Errorf("rolling up %s (slice %d of %d): %w", day, k+1, parts, err)
		}
	}
	var got uint64
	if err := s.conn.QueryRow(ctx, s.q(qRollupCheck), day, token).Scan(&got); err != nil {
		return fmt.Errorf("rolling up %s: checking: %w", day, err)
	}
	if got != events {
		return fmt.Errorf("rolling up %s: the rollup holds %d events, the raw counts %d; the day stays raw", day, got, events)
	}
	d, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return err
	}
	b, err := s.conn.PrepareBatch(ctx, s.q(qInsertRollupMarker))
	if err != nil {
		return fmt.Errorf("rolling up %s: %w", day, err)
	}
	if err := b.Append(d, token, events, time.Now().UTC()); err != nil {
		return fmt.Errorf("rolling up %s: %w", day, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("rolling up %s: writing its marker: %w", day, err)
	}
	s.log.Info("rolled up a day of counts", "day", day, "raw_rows", raw, "events", events, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// retentionPass is one pass of RunRetention, with its metrics.
func (s *Store) retentionPass(ctx context.Context, now time.Time) {
	_, err := s.EnforceRetention(ctx, now)
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Warn("retention pass failed; will retry", "err", err)
	}
	if due, derr := s.rollupDue(ctx, now); derr == nil {
		s.metrics.pending.Set(float64(len(due)))
		if err == nil && len(due) == 0 {
			s.metrics.lastPass.SetToCurrentTime()
		}
	}
}

// RunRetention rolls up and enforces retention now and then every interval
// until ctx ends, with its metrics in reg (nil: none).
func (s *Store) RunRetention(ctx context.Context, every time.Duration, reg prometheus.Registerer) error {
	s.metrics = newRetentionMetrics(reg)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.retentionPass(ctx, time.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
