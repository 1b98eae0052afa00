package api

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gapwatch/gapwatch/storage"
)

// TenantLister lists the streams that have counts stored; both stores
// implement it.
type TenantLister interface {
	// StreamNames returns at most q.Max() streams sorted by tenant then
	// source, and whether there were more.
	StreamNames(ctx context.Context, q storage.StreamQuery) ([]storage.StreamName, bool, error)
}

// WatermarkReader reads the pipeline's ingest watermark: how far every
// input partition has been stored (storage.IngestWatermark). unknown says
// why there is none (nothing ingested yet, a partition without progress).
type WatermarkReader interface {
	Watermark(ctx context.Context) (wm time.Time, unknown string, err error)
}

// TruncatedHeader is set on a listing cut at its bound; its value is the bound.
const TruncatedHeader = "X-Gapwatch-Truncated"

type tenantJSON struct {
	Tenant  string   `json:"tenant"`
	Sources []string `json:"sources"`
}

// tenants serves GET /api/v1/tenants?tenant=: every tenant with counts
// stored that the request's token may see, and its sources, sorted, at most
// storage.MaxStreamNames streams (then TruncatedHeader says so).
func (s *Server) tenants(w http.ResponseWriter, r *http.Request) {
	if s.deps.Tenants == nil {
		writeError(w, http.StatusServiceUnavailable, errors.New("no stream store"))
		return
	}
	if err := checkNames(r.URL.Query()); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	names, more, err := s.deps.Tenants.StreamNames(r.Context(), storage.StreamQuery{Tenant: r.URL.Query().Get("tenant")})
	if err != nil {
		s.storeError(w, "tenants", err)
		return
	}
	out := []tenantJSON{}
	for _, n := range names {
		if !Allowed(r.Context(), n.Tenant) {
			continue // a token sees its own tenants only
		}
		if len(out) == 0 || out[len(out)-1].Tenant != n.Tenant {
			out = append(out, tenantJSON{Tenant: n.Tenant, Sources: []string{}})
		}
		last := &out[len(out)-1]
		last.Sources = append(last.Sources, n.Source)
	}
	if more {
		w.Header().Set(TruncatedHeader, strconv.Itoa(storage.MaxStreamNames))
	}
	writeJSON(w, out)
}

type statusJSON struct {
	Version   string   `json:"version"`
	Roles     []string `json:"roles"`
	Watermark *string  `json:"watermark"`
	Lag       *float64 `json:"lag_seconds"`
	// The bucket width: the grid of every period and step the API takes
	// (omitted when not configured).
	Bucket int64 `json:"bucket_seconds,omitempty"`
	// Why the watermark is null (omitted when it is not).
	Unknown string `json:"watermark_unknown,omitempty"`
}

// status serves GET /api/v1/status: this process's version and roles, its
// bucket width, and the pipeline's ingest watermark with its lag behind the
// clock (null while unknown, with the reason).
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	out := statusJSON{Version: s.cfg.Version, Roles: s.cfg.Roles, Bucket: int64(s.cfg.Bucket / time.Second)}
	if out.Roles == nil {
		out.Roles = []string{}
	}
	switch {
	case s.deps.Watermark == nil:
		out.Unknown = "no watermark source"
	default:
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		wm, unknown, err := s.deps.Watermark.Watermark(ctx)
		switch {
		case err != nil:
			s.deps.Log.Warn("reading the ingest watermark", "err", err)
			out.Unknown = "reading it failed: " + err.Error()
		case unknown != "":
			out.Unknown = unknown
		default:
			t := wm.UTC().Format(time.RFC3339)
			lag := math.Round(s.deps.Now().Sub(wm).Seconds()*1000) / 1000
			out.Watermark, out.Lag = &t, &lag
		}
	}
	writeJSON(w, out)
}

// storeError answers a failed store read: 400 for a bad query, else 503.
func (s *Server) storeError(w http.ResponseWriter, what string, err error) {
	if errors.Is(err, storage.ErrBadQuery) {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	s.deps.Log.Warn(what+" query failed", "err", err)
	writeError(w, http.StatusServiceUnavailable, errors.New("store unavailable"))
}
