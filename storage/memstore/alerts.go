package memstore

import (
	"context"
	"slices"
	"strings"

	"github.com/gapwatch/gapwatch/storage"
)

// maxAlerts bounds the alerts the in-memory store keeps; the oldest go first.
const maxAlerts = 100_000

type shardID struct{ shard, shards int }

type storedAlert struct {
	shardID
	seq   uint64
	alert storage.Alert
}

// WriteAlerts stores a detector step atomically.
func (s *Store) WriteAlerts(_ context.Context, b storage.AlertBatch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := shardID{b.Shard, b.Shards}
	for _, a := range b.Alerts {
		a.Payload = slices.Clone(a.Payload)
		s.alerts = append(s.alerts, storedAlert{shardID: id, seq: b.Seq, alert: a})
	}
	if n := len(s.alerts) - maxAlerts; n > 0 {
		s.alerts = slices.Delete(s.alerts, 0, n)
	}
	p := b.DetectProgress
	p.AlertOffsets = slices.Clone(p.AlertOffsets)
	s.progress[id] = p
	return nil
}

// DetectProgress returns the last step stored by detector shard of shards.
func (s *Store) DetectProgress(_ context.Context, shard, shards int) (storage.DetectProgress, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.progress[shardID{shard, shards}]
	if !ok {
		p.Shard, p.Shards = shard, shards
	}
	return p, ok, nil
}

// BatchAlerts returns the alerts of step seq of detector shard of shards, in order.
func (s *Store) BatchAlerts(_ context.Context, shard, shards int, seq uint64) ([]storage.Alert, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []storage.Alert
	for _, a := range s.alerts {
		if a.shardID == (shardID{shard, shards}) && a.seq == seq {
			out = append(out, a.alert)
		}
	}
	return out, nil
}

// Gaps answers q from the stored alerts, as the ClickHouse store does.
func (s *Store) Gaps(_ context.Context, q storage.GapQuery) ([]storage.Gap, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	type folded struct {
		storage.Gap
		seq uint32
	}
	byID := map[string]*folded{}
	for _, sa := range s.alerts {
		a := &sa.alert
		if a.GapID == "" {
			continue
		}
		g := byID[a.GapID]
		if g == nil {
			g = &folded{Gap: storage.Gap{ID: a.GapID, Tenant: a.Tenant, Source: a.Source, Kind: a.Kind,
				StartedAt: a.StartedAt, DetectedAt: a.DetectedAt}, seq: a.Seq}
			g.Expected, g.Observed, g.Missing = a.Expected, a.Observed, a.Missing
			byID[a.GapID] = g
		}
		if a.StartedAt.Before(g.StartedAt) {
			g.StartedAt = a.StartedAt
		}
		if a.DetectedAt.Before(g.DetectedAt) {
			g.DetectedAt = a.DetectedAt
		}
		if a.EndedAt.After(g.EndedAt) {
			g.EndedAt = a.EndedAt
		}
		g.Planned = g.Planned || a.Planned
		if a.Type == "io.gapwatch.gap.resolved" {
			g.ResolvedObserved = max(g.ResolvedObserved, a.Observed)
		}
		if a.Seq > g.seq { // the latest: a drop may have become a silence
			g.seq, g.Kind, g.Expected, g.Observed, g.Missing = a.Seq, a.Kind, a.Expected, a.Observed, a.Missing
		}
	}
	s.mu.RUnlock()
	out := []storage.Gap{}
	for _, g := range byID {
		if q.Matches(g.Gap) {
			out = append(out, g.Gap)
		}
	}
	slices.SortFunc(out, func(a, b storage.Gap) int {
		if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	limit := q.Limit
	if limit == 0 {
		limit = storage.MaxGaps
	}
	return out[:min(len(out), limit)], nil
}
