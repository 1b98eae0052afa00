package api

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gapwatch/gapwatch/detect"
)

// ExplainResponse is GET /api/v1/explain's answer (what gapwatch explain
// --api reads).
type ExplainResponse struct {
	Tenant       string           `json:"tenant"`
	Source       string           `json:"source"`
	From         string           `json:"from"`
	To           string           `json:"to"`
	ReplayedFrom string           `json:"replayed_from"` // the stream's first count the replay read
	Buckets      []ExplainBucket  `json:"buckets"`
	Opened       []ExplainOpening `json:"opened"`
}

// ExplainBucket is one detect.Explanation, its fields named as the CSV
// columns of gapwatch explain.
type ExplainBucket struct {
	Bucket           string `json:"bucket"`
	Observed         uint64 `json:"observed"`
	Expected         Num    `json:"expected"`
	Judged           Num    `json:"judged"`
	Dispersion       Num    `json:"dispersion"`
	State            string `json:"state"`
	SilenceRun       int    `json:"silence_run"`
	SilenceLogP      Num    `json:"silence_logp"`
	SilenceThreshold Num    `json:"silence_threshold"`
	Drop50           Num    `json:"drop50"`
	Drop75           Num    `json:"drop75"`
	Rank             Num    `json:"rank"`
	DropThreshold    Num    `json:"drop_threshold"`
	Drop50Raw        Num    `json:"drop50_raw"`
	Drop75Raw        Num    `json:"drop75_raw"`
	LowQuantile      Num    `json:"low_quantile"`
	Late             Num    `json:"late"`
	LateThreshold    Num    `json:"late_threshold"`
}

// Num is a float64 in JSON, null when not finite: a silence run whose
// probability underflowed has log probability −Inf, which null reads back
// as (nothing else is ever infinite or NaN).
type Num float64

func (f Num) MarshalJSON() ([]byte, error) {
	if math.IsInf(float64(f), 0) || math.IsNaN(float64(f)) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, float64(f), 'g', -1, 64), nil
}

func (f *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = Num(math.Inf(-1))
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	*f = Num(v)
	return err
}

// explainBucket is x as the API answers it (ExplainBucket.Explanation's
// inverse).
func explainBucket(x detect.Explanation) ExplainBucket {
	return ExplainBucket{Bucket: x.Bucket.UTC().Format(time.RFC3339), Observed: x.Observed,
		Expected: Num(x.Expected), Judged: Num(x.Judged), Dispersion: Num(x.Dispersion), State: x.State,
		SilenceRun: x.SilenceRun, SilenceLogP: Num(x.SilenceLogP), SilenceThreshold: Num(x.SilenceThreshold),
		Drop50: Num(x.Drop50), Drop75: Num(x.Drop75), Rank: Num(x.Rank), DropThreshold: Num(x.DropThreshold),
		Drop50Raw: Num(x.Drop50Raw), Drop75Raw: Num(x.Drop75Raw), LowQuantile: Num(x.LowQuantile),
		Late: Num(x.Late), LateThreshold: Num(x.LateThreshold)}
}

// Explanation returns b as the detect.Explanation it was made from.
func (b ExplainBucket) Explanation() (detect.Explanation, error) {
	at, err := time.Parse(time.RFC3339, b.Bucket)
	if err != nil {
		return detect.Explanation{}, fmt.Errorf("bucket: %w", err)
	}
	return detect.Explanation{Bucket: at.UTC(), Observed: b.Observed, State: b.State, SilenceRun: b.SilenceRun,
		Expected: float64(b.Expected), Judged: float64(b.Judged), Dispersion: float64(b.Dispersion),
		SilenceLogP: float64(b.SilenceLogP), SilenceThreshold: float64(b.SilenceThreshold),
		Drop50: float64(b.Drop50), Drop75: float64(b.Drop75), Rank: float64(b.Rank), DropThreshold: float64(b.DropThreshold),
		Drop50Raw: float64(b.Drop50Raw), Drop75Raw: float64(b.Drop75Raw), LowQuantile: float64(b.LowQuantile),
		Late: float64(b.Late), LateThreshold: float64(b.LateThreshold)}, nil
}

// ExplainOpening is a gap the replay opened.
type ExplainOpening struct {
	Kind       string  `json:"kind"`
	StartedAt  string  `json:"started_at"`
	DetectedAt string  `json:"detected_at"`
	Expected   float64 `json:"expected_events"`
	Missing    float64 `json:"missing_events"`
}

// explain serves GET /api/v1/explain?tenant=&source=&from=&to=: why a
// stream did or did not page over [from, to) — its stored arrival counts
// from the detect role's history before from replayed through a fresh
// engine with the detector's settings (detect.ExplainStream), each judged
// bucket of the period with what its tests saw, and the gaps the replay
// opened in it (what gapwatch explain writes as CSV). 404 when the stream
// has no counts in that span; 400 for a period past the ingest watermark.
func (s *Server) explain(w http.ResponseWriter, r *http.Request) {
	if s.deps.Counts == nil {
		writeError(w, http.StatusServiceUnavailable, errors.New("explaining needs the count store"))
		return
	}
	v := r.URL.Query()
	if err := checkNames(v); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	tenant, source := v.Get("tenant"), v.Get("source")
	if tenant == "" || source == "" {
		writeError(w, http.StatusBadRequest, errors.New("tenant and source are required"))
		return
	}
	from, to, err := parsePeriod(v)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	from, to = from.UTC(), to.UTC()
	cfg := s.cfg.Explain
	cfg.Engine.Bucket = s.cfg.Bucket
	if err := detect.CheckExplain(s.cfg.Bucket, from, to, cfg.History); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if s.deps.Watermark != nil {
		// Checked when known: without it (nothing ingested yet) the
		// counts are what the store holds.
		if wm, unknown, err := s.deps.Watermark.Watermark(r.Context()); err == nil && unknown == "" {
			if err := detect.CheckExplainTo(s.cfg.Bucket, to, wm); err != nil {
				writeError(w, http.StatusBadRequest, err)
				return
			}
		}
	}
	counts, err := detect.StoredCounts(r.Context(), s.deps.Counts, s.cfg.Bucket, tenant, source, from, to, cfg.History)
	if errors.Is(err, detect.ErrNoCounts) {
		writeError(w, http.StatusNotFound, err)
		return
	}
	if err != nil {
		s.deps.Log.Warn("explain: reading counts failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, errors.New("store unavailable"))
		return
	}
	xs, opened, err := detect.ExplainStream(cfg.Engine, tenant, source, counts, from, to)
	if err != nil {
		s.deps.Log.Error("explain: the detector's settings", "err", err)
		writeError(w, http.StatusInternalServerError, errors.New("the detector's settings do not make an engine"))
		return
	}
	resp := ExplainResponse{Tenant: tenant, Source: source, From: from.Format(time.RFC3339), To: to.Format(time.RFC3339),
		ReplayedFrom: time.Unix(counts[0].Bucket, 0).UTC().Format(time.RFC3339),
		Buckets:      make([]ExplainBucket, len(xs)), Opened: make([]ExplainOpening, len(opened))}
	for i, x := range xs {
		resp.Buckets[i] = explainBucket(x)
	}
	for i, ev := range opened {
		resp.Opened[i] = ExplainOpening{Kind: string(ev.Kind), StartedAt: ev.StartedAt.UTC().Format(time.RFC3339),
			DetectedAt: ev.DetectedAt.UTC().Format(time.RFC3339), Expected: ev.Expected, Missing: ev.Missing}
	}
	writeJSON(w, resp)
}
