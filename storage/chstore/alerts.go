package chstore

import (
	"context"
	"fmt"
	"time"

	"github.com/gapwatch/gapwatch/storage"
)

// WriteAlerts stores a detector step — its alerts and the progress row — in one
// insert whose rows share one partition: one part, atomic.
func (s *Store) WriteAlerts(ctx context.Context, b storage.AlertBatch) error {
	batch, err := s.conn.PrepareBatch(ctx, s.q(qInsertAlerts))
	if err != nil {
		return fmt.Errorf("preparing alert insert: %w", err)
	}
	defer batch.Abort() //nolint:errcheck // no-op after Send
	day := time.Now().UTC().Truncate(24 * time.Hour)
	zero := time.Unix(0, 0).UTC()
	shard, shards := uint16(b.Shard), uint16(b.Shards)
	for i, a := range b.Alerts {
		err := batch.Append(day, shard, shards, b.Seq, uint32(i), a.Type, a.ID, a.Time, a.Key, string(a.Payload),
			a.GapID, a.Tenant, a.Source, a.Kind, orZero(a.StartedAt), orZero(a.DetectedAt), orZero(a.EndedAt),
			a.Expected, a.Observed, a.Missing, a.Seq, b2u(a.Planned), b2u(a.Suppressed), zero, []int64{})
		if err != nil {
			return fmt.Errorf("appending alert: %w", err)
		}
	}
	offsets := b.AlertOffsets
	if offsets == nil {
		offsets = []int64{}
	}
	err = batch.Append(day, shard, shards, b.Seq, uint32(len(b.Alerts)), "", "", zero, "", "",
		"", "", "", "", zero, zero, zero, 0.0, 0.0, 0.0, uint32(0), uint8(0), uint8(0), b.Watermark, offsets)
	if err != nil {
		return fmt.Errorf("appending progress: %w", err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("inserting %d alerts into %s.alerts: %w", len(b.Alerts), s.cfg.Database, err)
	}
	return nil
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func orZero(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return t
}

func fromZero(t time.Time) time.Time {
	if t.Unix() == 0 {
		return time.Time{}
	}
	return t.UTC()
}

// DetectProgress returns the last step stored by detector shard of shards;
// ok is false when it has stored none.
func (s *Store) DetectProgress(ctx context.Context, shard, shards int) (p storage.DetectProgress, ok bool, err error) {
	rows, err := s.conn.Query(ctx, s.q(qDetectProgress), uint16(shard), uint16(shards))
	if err != nil {
		return p, false, fmt.Errorf("reading detector progress: %w", err)
	}
	defer rows.Close()
	p.Shard, p.Shards = shard, shards
	for rows.Next() {
		if err := rows.Scan(&p.Seq, &p.Watermark, &p.AlertOffsets); err != nil {
			return p, false, fmt.Errorf("reading detector progress: %w", err)
		}
		p.Watermark = p.Watermark.UTC()
		ok = true
	}
	return p, ok, rows.Err()
}

// BatchAlerts returns the alerts stored with step seq of detector shard of
// shards, in publication order, with ID, Type, Time, Key and Payload set.
func (s *Store) BatchAlerts(ctx context.Context, shard, shards int, seq uint64) ([]storage.Alert, error) {
	rows, err := s.conn.Query(ctx, s.q(qBatchAlerts), uint16(shard), uint16(shards), seq)
	if err != nil {
		return nil, fmt.Errorf("reading stored alerts: %w", err)
	}
	defer rows.Close()
	var out []storage.Alert
	for rows.Next() {
		var a storage.Alert
		var payload string
		var planned, suppressed uint8
		if err := rows.Scan(&a.ID, &a.Type, &a.Time, &a.Key, &payload, &planned, &suppressed); err != nil {
			return nil, fmt.Errorf("reading stored alerts: %w", err)
		}
		a.Time, a.Payload, a.Planned, a.Suppressed = a.Time.UTC(), []byte(payload), planned == 1, suppressed == 1
		out = append(out, a)
	}
	return out, rows.Err()
}

// Gaps answers q from the stored alerts.
func (s *Store) Gaps(ctx context.Context, q storage.GapQuery) ([]storage.Gap, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	state := q.State
	if state == "" {
		state = storage.GapsAll
	}
	to := int64(1<<32 - 1) // the last DateTime
	if !q.To.IsZero() {
		to = q.To.Unix()
	}
	limit := q.Limit
	if limit == 0 {
		limit = storage.MaxGaps
	}
	rows, err := s.conn.Query(ctx, s.q(qGaps), q.Tenant, q.Tenant, q.Source, q.Source,
		state, state, to, max(q.From.Unix(), 0), max(q.After.StartedAt.Unix(), 0), max(q.After.StartedAt.Unix(), 0), q.After.ID, uint64(limit))
	if err != nil {
		return nil, fmt.Errorf("reading gaps: %w", err)
	}
	defer rows.Close()
	out := []storage.Gap{}
	for rows.Next() {
		var g storage.Gap
		var planned uint8
		if err := rows.Scan(&g.ID, &g.Tenant, &g.Source, &g.Kind, &g.StartedAt, &g.DetectedAt, &g.EndedAt,
			&g.Expected, &g.Observed, &g.Missing, &planned, &g.ResolvedObserved); err != nil {
			return nil, fmt.Errorf("reading gaps: %w", err)
		}
		g.StartedAt, g.DetectedAt, g.EndedAt = g.StartedAt.UTC(), g.DetectedAt.UTC(), fromZero(g.EndedAt)
		g.Planned = planned == 1
		out = append(out, g)
	}
	return out, rows.Err()
}
