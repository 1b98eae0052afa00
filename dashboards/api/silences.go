package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/gapwatch/gapwatch/storage"
)

type silenceJSON struct {
	ID        string `json:"id"`
	Tenant    string `json:"tenant"`
	Source    string `json:"source"` // "" = every source of the tenant
	StartsAt  string `json:"starts_at"`
	EndsAt    string `json:"ends_at"`
	Comment   string `json:"comment"`
	CreatedAt string `json:"created_at"`
}

func toSilenceJSON(sl storage.Silence) silenceJSON {
	return silenceJSON{ID: sl.ID, Tenant: sl.Tenant, Source: sl.Source, StartsAt: sl.StartsAt.UTC().Format(time.RFC3339),
		EndsAt: sl.EndsAt.UTC().Format(time.RFC3339), Comment: sl.Comment, CreatedAt: sl.Created.UTC().Format(time.RFC3339)}
}

func (s *Server) silenceStore(w http.ResponseWriter) bool {
	if s.deps.Silences == nil {
		writeError(w, http.StatusServiceUnavailable, errors.New("no silence store"))
		return false
	}
	return true
}

func (s *Server) storeFailed(w http.ResponseWriter, what string, err error) {
	s.deps.Log.Warn(what+" failed", "err", err)
	writeError(w, http.StatusServiceUnavailable, errors.New("store unavailable"))
}

// listSilences serves GET /api/v1/silences: every silence, newest first.
func (s *Server) listSilences(w http.ResponseWriter, r *http.Request) {
	if !s.silenceStore(w) {
		return
	}
	all, err := s.deps.Silences.Silences(r.Context())
	if err != nil {
		s.storeFailed(w, "listing silences", err)
		return
	}
	all = slices.DeleteFunc(all, func(sl storage.Silence) bool { return !Allowed(r.Context(), sl.Tenant) })
	out := make([]silenceJSON, len(all))
	for i, sl := range all {
		out[i] = toSilenceJSON(sl)
	}
	writeJSON(w, out)
}

// createSilence serves POST /api/v1/silences with
// {"tenant","source","starts_at","ends_at","comment"}; starts_at defaults to now.
func (s *Server) createSilence(w http.ResponseWriter, r *http.Request) {
	if !s.silenceStore(w) {
		return
	}
	var in silenceJSON
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return
	}
	now := time.Now().UTC().Truncate(time.Second)
	sl := storage.Silence{Tenant: in.Tenant, Source: in.Source, Comment: in.Comment, StartsAt: now, Created: now}
	if in.StartsAt != "" {
		t, err := time.Parse(time.RFC3339, in.StartsAt)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("starts_at: want RFC 3339: %w", err))
			return
		}
		sl.StartsAt = t.UTC()
	}
	t, err := time.Parse(time.RFC3339, in.EndsAt)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("ends_at: want RFC 3339: %w", err))
		return
	}
	sl.EndsAt = t.UTC()
	if err := sl.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if s.forbidTenant(w, r, sl.Tenant) {
		return
	}
	s.silenceMu.Lock()
	defer s.silenceMu.Unlock()
	if err := s.makeRoomForSilence(r.Context(), sl.Tenant, now); err != nil {
		if errors.Is(err, errTooManySilences) {
			writeError(w, http.StatusConflict, err)
			return
		}
		s.storeFailed(w, "listing silences", err)
		return
	}
	var id [8]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand)
	sl.ID = hex.EncodeToString(id[:])
	if err := s.deps.Silences.PutSilence(r.Context(), sl); err != nil {
		s.storeFailed(w, "storing a silence", err)
		return
	}
	w.Header().Set("Location", "/api/v1/silences/"+sl.ID)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(toSilenceJSON(sl))
}

// Limits on stored silences. The stores list (and the detector applies) only
// the newest storage.MaxSilences, so more must never be stored: a flood of new
// silences would silently push older, still active ones out of effect.
const (
	// MaxActiveSilencesPerTenant bounds a tenant's silences that have not ended,
	// so that one tenant (or its token) cannot use up the shared room.
	MaxActiveSilencesPerTenant = 100
	// SilenceRetention is how long an ended silence is kept before a creation
	// deletes it to make room (longer than the detector's history replay).
	SilenceRetention = 30 * 24 * time.Hour
)

var errTooManySilences = errors.New("too many silences")

// makeRoomForSilence deletes silences that ended more than SilenceRetention
// ago and refuses (errTooManySilences) a new silence of tenant when the store
// or the tenant is full.
func (s *Server) makeRoomForSilence(ctx context.Context, tenant string, now time.Time) error {
	all, err := s.deps.Silences.Silences(ctx)
	if err != nil {
		return err
	}
	kept, active := 0, 0
	for _, sl := range all {
		if now.Sub(sl.EndsAt) > SilenceRetention {
			if _, err := s.deps.Silences.DeleteSilence(ctx, sl.ID); err != nil {
				return err
			}
			continue
		}
		kept++
		if sl.Tenant == tenant && sl.EndsAt.After(now) {
			active++
		}
	}
	switch {
	case active >= MaxActiveSilencesPerTenant:
		return fmt.Errorf("%w: tenant %q has %d silences that have not ended (the limit); delete some first", errTooManySilences, tenant, active)
	case kept >= storage.MaxSilences:
		return fmt.Errorf("%w: %d silences are stored (the limit); delete some first", errTooManySilences, kept)
	}
	return nil
}

// deleteSilence serves DELETE /api/v1/silences/{id}.
func (s *Server) deleteSilence(w http.ResponseWriter, r *http.Request) {
	if !s.silenceStore(w) {
		return
	}
	if sc := ScopeOf(r.Context()); sc != nil { // a scoped token: the silence's tenant decides
		all, err := s.deps.Silences.Silences(r.Context())
		if err != nil {
			s.storeFailed(w, "listing silences", err)
			return
		}
		for _, sl := range all {
			if sl.ID == r.PathValue("id") && s.forbidTenant(w, r, sl.Tenant) {
				return
			}
		}
	}
	ok, err := s.deps.Silences.DeleteSilence(r.Context(), r.PathValue("id"))
	switch {
	case err != nil:
		s.storeFailed(w, "deleting a silence", err)
	case !ok:
		writeError(w, http.StatusNotFound, errors.New("no such silence"))
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}
