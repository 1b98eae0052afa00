package chstore

import (
	"context"
	"fmt"
	"time"

	"github.com/gapwatch/gapwatch/storage"
)

// PutSilence stores s (a new silence, or a new version of one).
func (s *Store) PutSilence(ctx context.Context, sl storage.Silence) error {
	return s.writeSilence(ctx, sl, 0)
}

// DeleteSilence removes the silence id; it reports whether it existed.
func (s *Store) DeleteSilence(ctx context.Context, id string) (bool, error) {
	all, err := s.Silences(ctx)
	if err != nil {
		return false, err
	}
	for _, sl := range all {
		if sl.ID == id {
			return true, s.writeSilence(ctx, sl, 1)
		}
	}
	return false, nil
}

func (s *Store) writeSilence(ctx context.Context, sl storage.Silence, deleted uint8) error {
	batch, err := s.conn.PrepareBatch(ctx, s.q(qInsertSilence))
	if err != nil {
		return fmt.Errorf("storing silence %s: %w", sl.ID, err)
	}
	defer batch.Abort() //nolint:errcheck // no-op after Send
	if err := batch.Append(sl.ID, sl.Tenant, sl.Source, sl.StartsAt, sl.EndsAt, sl.Comment, sl.Created,
		uint64(time.Now().UnixNano()), deleted); err != nil {
		return fmt.Errorf("storing silence %s: %w", sl.ID, err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("storing silence %s: %w", sl.ID, err)
	}
	return nil
}

// Silences returns the silences not deleted, newest first.
func (s *Store) Silences(ctx context.Context) ([]storage.Silence, error) {
	rows, err := s.conn.Query(ctx, s.q(qSilences), uint64(storage.MaxSilences))
	if err != nil {
		return nil, fmt.Errorf("reading silences: %w", err)
	}
	defer rows.Close()
	out := []storage.Silence{}
	for rows.Next() {
		var sl storage.Silence
		if err := rows.Scan(&sl.ID, &sl.Tenant, &sl.Source, &sl.StartsAt, &sl.EndsAt, &sl.Comment, &sl.Created); err != nil {
			return nil, fmt.Errorf("reading silences: %w", err)
		}
		sl.StartsAt, sl.EndsAt, sl.Created = sl.StartsAt.UTC(), sl.EndsAt.UTC(), sl.Created.UTC()
		out = append(out, sl)
	}
	return out, rows.Err()
}
