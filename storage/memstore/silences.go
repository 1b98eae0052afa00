package memstore

import (
	"context"
	"slices"
	"strings"

	"github.com/gapwatch/gapwatch/storage"
)

// PutSilence stores sl, replacing a silence with the same id.
func (s *Store) PutSilence(_ context.Context, sl storage.Silence) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.silences == nil {
		s.silences = map[string]storage.Silence{}
	}
	s.silences[sl.ID] = sl
	return nil
}

// DeleteSilence removes the silence id and reports whether it existed.
func (s *Store) DeleteSilence(_ context.Context, id string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.silences[id]
	delete(s.silences, id)
	return ok, nil
}

// Silences returns the silences, newest first, as the ClickHouse store does.
func (s *Store) Silences(context.Context) ([]storage.Silence, error) {
	s.mu.RLock()
	out := make([]storage.Silence, 0, len(s.silences))
	for _, sl := range s.silences {
		out = append(out, sl)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b storage.Silence) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out[:min(len(out), storage.MaxSilences)], nil
}
