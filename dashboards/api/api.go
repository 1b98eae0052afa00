// Package api is gapwatch's HTTP query API (role api): rates per stream on both
// clocks, health, readiness and Prometheus metrics. The Grafana datasource plugin
// and the built-in pages read from it; it reads the store and never writes.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/storage"
)

// RateReader answers rate queries; both stores implement it.
type RateReader interface {
	// Rates returns one point per step of q, zero-filled. An error wrapping
	// storage.ErrBadQuery is the caller's fault.
	Rates(ctx context.Context, q storage.RateQuery) ([]storage.Point, error)
}

// GapReader answers gap queries; both stores implement it.
type GapReader interface {
	Gaps(ctx context.Context, q storage.GapQuery) ([]storage.Gap, error)
}

// SilenceStore keeps the planned maintenance windows; both stores implement it.
type SilenceStore interface {
	PutSilence(ctx context.Context, s storage.Silence) error
	DeleteSilence(ctx context.Context, id string) (bool, error)
	Silences(ctx context.Context) ([]storage.Silence, error)
}

// ExpectationReader answers what detection expected of streams (arrival
// clock); both stores implement it.
type ExpectationReader interface {
	Bands(ctx context.Context, q storage.RateQuery) ([]storage.Band, error)
	Coverage(ctx context.Context, q storage.CoverageQuery) ([]storage.SourceBand, error)
}

// StreamCounter reads one stream's stored bucket counts (GET
// /api/v1/explain replays them); both stores implement it.
type StreamCounter = detect.StreamCounter

// Stream is one stream's status as the detector sees it.
type Stream struct {
	Tenant, Source string
	Status         string
	LastSeen       time.Time
	EventsPerMin   float64
	HistoryHours   float64 // how much of the stream the baseline has learned from
	// Profile is what its expectation follows and Weekend how its possible
	// weekends are judged (detect.Expectation).
	Profile, Weekend string
}

// StreamLister lists the detector's streams (nil without the detect role).
type StreamLister interface {
	Streams(tenant, source string) []Stream
}

// Check is one readiness condition: nil when satisfied.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Config is the API role's configuration.
type Config struct {
	Addr   string        `yaml:"addr"` // listen address; default 127.0.0.1:8080 (loopback unless configured)
	Bucket time.Duration `yaml:"-"`    // the pipeline's bucket width: default and smallest step
	// Version and Roles are this process's, for /api/v1/status.
	Version string   `yaml:"-"`
	Roles   []string `yaml:"-"`

	Access `yaml:",inline"` // tokens, TLS (auth.go)

	// Explain is the detector's configuration and start-up history, which
	// GET /api/v1/explain replays with.
	Explain ExplainConfig `yaml:"-"`
}

// ExplainConfig is what GET /api/v1/explain replays a stream with: the
// detect role's engine settings and the history its warm start replays.
type ExplainConfig struct {
	Engine  detect.Config
	History time.Duration
}

// Deps are what the server reads.
type Deps struct {
	Rates    RateReader
	Gaps     GapReader    // nil: /api/v1/gaps answers 503
	Streams  StreamLister // nil: /api/v1/streams answers 503
	Silences SilenceStore // nil: /api/v1/silences answers 503
	// Expectations are the detector's stored baselines: nil leaves the rates'
	// band null and /api/v1/coverage answering 503.
	Expectations ExpectationReader
	Tenants      TenantLister     // nil: /api/v1/tenants answers 503
	Counts       StreamCounter    // nil: /api/v1/explain answers 503
	Watermark    WatermarkReader  // nil: /api/v1/status has no watermark
	Now          func() time.Time // default time.Now
	Gatherer     prometheus.Gatherer
	Ready        []Check
	Log          *slog.Logger
	// Page serves the built-in coverage page at GET / and its files under
	// GET /assets/ (nil: no page).
	Page http.Handler
}

// Timeouts bound how long one connection may hold the server: a client
// sending its headers byte by byte (slowloris), reading its response slowly
// or keeping an idle connection is cut off.
type Timeouts struct {
	ReadHeader time.Duration // the request's headers
	Read       time.Duration // the whole request, body included
	Write      time.Duration // from the end of the request's headers to the end of the response
	Idle       time.Duration // a keep-alive connection waiting for its next request
}

// DefaultTimeouts are a Server's timeouts unless changed.
var DefaultTimeouts = Timeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Write: time.Minute, Idle: 2 * time.Minute}

// Server serves the API.
type Server struct {
	// Timeouts are the connections' timeouts (DefaultTimeouts); set before Serve.
	Timeouts Timeouts

	cfg  Config
	deps Deps
	mux  *http.ServeMux

	handler   http.Handler // mux behind protect (auth.go)
	silenceMu sync.Mutex   // one silence creation at a time: the limits hold (silences.go)
}

// New returns a server; Run listens.
func New(cfg Config, deps Deps) *Server {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.Bucket == 0 {
		cfg.Bucket = time.Minute
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	deps.Log = deps.Log.With("component", "api")
	s := &Server{Timeouts: DefaultTimeouts, cfg: cfg, deps: deps, mux: http.NewServeMux()}
	s.handler = s.protect(s.mux)
	s.mux.HandleFunc("GET /api/v1/rates", s.rates)
	s.mux.HandleFunc("GET /api/v1/gaps", s.gaps)
	s.mux.HandleFunc("GET /api/v1/coverage", s.coverage)
	s.mux.HandleFunc("GET /api/v1/streams", s.streams)
	s.mux.HandleFunc("GET /api/v1/silences", s.listSilences)
	s.mux.HandleFunc("POST /api/v1/silences", s.createSilence)
	s.mux.HandleFunc("DELETE /api/v1/silences/{id}", s.deleteSilence)
	s.mux.HandleFunc("GET /api/v1/tenants", s.tenants)
	s.mux.HandleFunc("GET /api/v1/status", s.status)
	s.mux.HandleFunc("GET /api/v1/report", s.report)
	s.mux.HandleFunc("GET /api/v1/explain", s.explain)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	s.mux.HandleFunc("GET /readyz", s.readyz)
	if deps.Page != nil {
		s.mux.Handle("GET /{$}", deps.Page)
		s.mux.Handle("GET /assets/", deps.Page)
	}
	if deps.Gatherer != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(deps.Gatherer, promhttp.HandlerOpts{}))
	}
	return s
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler { return s.handler }

// Run serves on cfg.Addr until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	if err := s.cfg.CheckExposure(s.cfg.Addr); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("api: listening on %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := s.cfg.CheckExposure(ln.Addr().String()); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	t := s.Timeouts
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read,
		WriteTimeout: t.Write, IdleTimeout: t.Idle, MaxHeaderBytes: 64 << 10}
	scheme := "http://"
	if s.cfg.TLS.Enabled() {
		scheme = "https://"
	}
	s.deps.Log.Info("serving", "addr", scheme+ln.Addr().String(), "tokens", len(s.cfg.Tokens))
	errc := make(chan error, 1)
	go func() {
		if s.cfg.TLS.Enabled() {
			errc <- srv.ServeTLS(ln, s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile)
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("api: %w", err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shut)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var failing []string
	for _, c := range s.deps.Ready {
		if err := c.Fn(ctx); err != nil {
			failing = append(failing, c.Name+": "+err.Error())
		}
	}
	if len(failing) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready:\n"+strings.Join(failing, "\n"))
		return
	}
	fmt.Fprintln(w, "ready")
}

type ratePoint struct {
	T        string   `json:"t"`
	Events   uint64   `json:"events"`
	Expected *float64 `json:"expected"`
	Lower    *float64 `json:"lower"`
	Upper    *float64 `json:"upper"`
}

type ratesResponse struct {
	Tenant string      `json:"tenant"`
	Source string      `json:"source"`
	Step   int64       `json:"step"`
	Clock  string      `json:"clock"`
	Points []ratePoint `json:"points"`
}

func (s *Server) rates(w http.ResponseWriter, r *http.Request) {
	q, err := s.parseRateQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	pts, err := s.deps.Rates.Rates(r.Context(), q)
	if err != nil {
		if errors.Is(err, storage.ErrBadQuery) {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		s.deps.Log.Warn("rates query failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, errors.New("store unavailable"))
		return
	}
	resp := ratesResponse{Tenant: q.Tenant, Source: q.Source, Step: int64(q.Step / time.Second), Clock: q.Clock.String(),
		Points: make([]ratePoint, len(pts))}
	for i, p := range pts {
		resp.Points[i] = ratePoint{T: p.T.Format(time.RFC3339), Events: p.Events}
	}
	if s.deps.Expectations != nil && q.Clock == storage.Arrival {
		bands, err := s.deps.Expectations.Bands(r.Context(), q)
		if err != nil {
			s.deps.Log.Warn("expectations query failed", "err", err)
			writeError(w, http.StatusServiceUnavailable, errors.New("store unavailable"))
			return
		}
		for _, b := range bands {
			if b.I >= 0 && b.I < int64(len(resp.Points)) {
				p := &resp.Points[b.I]
				p.Expected, p.Lower, p.Upper = round2(b.Expected), round2(b.Lower), round2(b.Upper)
			}
		}
	}
	writeJSON(w, resp)
}

func (s *Server) parseRateQuery(r *http.Request) (storage.RateQuery, error) {
	v := r.URL.Query()
	q := storage.RateQuery{Tenant: v.Get("tenant"), Source: v.Get("source")}
	if err := checkNames(v); err != nil {
		return q, err
	}
	if q.Tenant == "" || q.Source == "" {
		return q, errors.New("tenant and source are required")
	}
	var err error
	if q.Clock, err = storage.ParseClock(v.Get("clock")); err != nil {
		return q, err
	}
	if q.From, q.To, q.Step, err = s.parseWindow(v); err != nil {
		return q, err
	}
	return q, q.Validate()
}

// parseWindow reads from, to (RFC 3339; default the last hour) and step (a
// multiple of the bucket width; default the bucket width).
func (s *Server) parseWindow(v url.Values) (from, to time.Time, step time.Duration, err error) {
	step = s.cfg.Bucket
	if st := v.Get("step"); st != "" {
		if step, err = time.ParseDuration(st); err != nil {
			return from, to, step, fmt.Errorf("step: %w", err)
		}
	}
	if step < s.cfg.Bucket || step%s.cfg.Bucket != 0 {
		return from, to, step, fmt.Errorf("step %s must be a multiple of the bucket width %s", step, s.cfg.Bucket)
	}
	to = time.Now().UTC()
	if t := v.Get("to"); t != "" {
		if to, err = time.Parse(time.RFC3339, t); err != nil {
			return from, to, step, fmt.Errorf("to: want RFC 3339: %w", err)
		}
	}
	from = to.Add(-time.Hour)
	if f := v.Get("from"); f != "" {
		if from, err = time.Parse(time.RFC3339, f); err != nil {
			return from, to, step, fmt.Errorf("from: want RFC 3339: %w", err)
		}
	}
	return from, to, step, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		slog.Debug("writing response", "err", err)
	}
}

func writeError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

type gapJSON struct {
	ID         string  `json:"id"`
	Tenant     string  `json:"tenant"`
	Source     string  `json:"source"`
	Kind       string  `json:"kind"`
	StartedAt  string  `json:"started_at"`
	DetectedAt string  `json:"detected_at"`
	EndedAt    *string `json:"ended_at"`
	Expected   uint64  `json:"expected_events"`
	Observed   uint64  `json:"observed_events"`
	Missing    uint64  `json:"missing_events"`
	Planned    bool    `json:"planned"` // inside a maintenance window: recorded, not alerted
}

func wholeEvents(v float64) uint64 {
	if !(v > 0) {
		return 0
	}
	return uint64(math.Round(v))
}

// gaps serves GET /api/v1/gaps?tenant=&source=&state=open|resolved|all&from=&to=&limit=&cursor=:
// at most limit gaps (default and at most storage.MaxGaps); when there are
// more, TruncatedHeader says so and NextCursorHeader is the cursor of the rest.
func (s *Server) gaps(w http.ResponseWriter, r *http.Request) {
	if s.deps.Gaps == nil {
		writeError(w, http.StatusServiceUnavailable, errors.New("no gap store"))
		return
	}
	v := r.URL.Query()
	if err := checkNames(v); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	q := storage.GapQuery{Tenant: v.Get("tenant"), Source: v.Get("source"), State: v.Get("state")}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if raw := v.Get(p.name); raw != "" {
			t, err := time.Parse(time.RFC3339, raw)
			if err != nil {
				writeError(w, http.StatusBadRequest, fmt.Errorf("%s: want RFC 3339: %w", p.name, err))
				return
			}
			if err := storage.CheckTime(p.name, t); err != nil { // year 1 is also the zero time: unset
				writeError(w, http.StatusBadRequest, err)
				return
			}
			*p.t = t
		}
	}
	if err := gapPage(v, &q); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	gs, err := s.deps.Gaps.Gaps(r.Context(), q)
	if err == nil && len(gs) == q.Limit { // cut? one more gap after the last says
		next := q
		next.Limit, next.After = 1, gs[len(gs)-1].Cursor()
		var more []storage.Gap
		if more, err = s.deps.Gaps.Gaps(r.Context(), next); len(more) > 0 {
			w.Header().Set(TruncatedHeader, strconv.Itoa(q.Limit))
			w.Header().Set(NextCursorHeader, encodeCursor(next.After))
		}
	}
	if err != nil {
		s.storeError(w, "gaps", err)
		return
	}
	gs = slices.DeleteFunc(gs, func(g storage.Gap) bool { return !Allowed(r.Context(), g.Tenant) })
	out := make([]gapJSON, len(gs))
	for i, g := range gs {
		out[i] = gapJSON{ID: g.ID, Tenant: g.Tenant, Source: g.Source, Kind: g.Kind,
			StartedAt: g.StartedAt.UTC().Format(time.RFC3339), DetectedAt: g.DetectedAt.UTC().Format(time.RFC3339),
			Expected: wholeEvents(g.Expected), Observed: wholeEvents(g.Observed), Missing: wholeEvents(g.Missing), Planned: g.Planned}
		if !g.Open() {
			e := g.EndedAt.UTC().Format(time.RFC3339)
			out[i].EndedAt = &e
		}
	}
	writeJSON(w, out)
}

type streamJSON struct {
	Tenant       string  `json:"tenant"`
	Source       string  `json:"source"`
	Status       string  `json:"status"`
	LastSeen     *string `json:"last_seen"`
	EventsPerMin float64 `json:"events_per_min"`
	HistoryHours float64 `json:"history_hours"`
	Profile      string  `json:"profile"`
	Weekend      string  `json:"weekend"`
}

// streams serves GET /api/v1/streams?tenant=&source=.
func (s *Server) streams(w http.ResponseWriter, r *http.Request) {
	if s.deps.Streams == nil {
		writeError(w, http.StatusServiceUnavailable, errors.New("the detect role does not run in this process"))
		return
	}
	v := r.URL.Query()
	if err := checkNames(v); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	list := s.deps.Streams.Streams(v.Get("tenant"), v.Get("source"))
	list = slices.DeleteFunc(list, func(st Stream) bool { return !Allowed(r.Context(), st.Tenant) })
	out := make([]streamJSON, len(list))
	for i, st := range list {
		out[i] = streamJSON{Tenant: st.Tenant, Source: st.Source, Status: st.Status,
			EventsPerMin: math.Round(st.EventsPerMin*1000) / 1000,
			HistoryHours: math.Round(st.HistoryHours*100) / 100, Profile: st.Profile, Weekend: st.Weekend}
		if !st.LastSeen.IsZero() {
			ls := st.LastSeen.UTC().Format(time.RFC3339)
			out[i].LastSeen = &ls
		}
	}
	writeJSON(w, out)
}
