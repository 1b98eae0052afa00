package api

import (
	"errors"
	"math"
	"net/http"
	"time"

	"github.com/gapwatch/gapwatch/storage"
)

// coveragePoint is one step of one stream: what detection expected, what
// arrived by the time the step was judged (observed, arrival clock), what is
// stored by event time now (received: late data that filled a hole counts),
// and the share of the expected covered by the larger of the two (1 when next
// to nothing was expected). All null where the stream had no baseline.
type coveragePoint struct {
	T        string   `json:"t"`
	Expected *float64 `json:"expected"`
	Observed *uint64  `json:"observed"`
	Received *uint64  `json:"received"`
	Share    *float64 `json:"share"`
}

type coverageStream struct {
	Source string `json:"source"`
	// Totals over the steps with a baseline.
	Expected float64         `json:"expected_events"`
	Observed uint64          `json:"observed_events"`
	Received uint64          `json:"received_events"`
	Share    *float64        `json:"share"`
	Points   []coveragePoint `json:"points"`
}

type coverageResponse struct {
	Tenant  string           `json:"tenant"`
	Step    int64            `json:"step"`
	From    string           `json:"from"`
	To      string           `json:"to"`
	Streams []coverageStream `json:"streams"`
}

// coverage answers GET /api/v1/coverage?tenant=&from=&to=&step=: for every
// source of the tenant that detection judged in the range, per step, the
// share of the expected events that arrived, on time or late.
func (s *Server) coverage(w http.ResponseWriter, r *http.Request) {
	if s.deps.Expectations == nil {
		writeError(w, http.StatusServiceUnavailable, errors.New("coverage needs the detect role's expectations"))
		return
	}
	v := r.URL.Query()
	q := storage.CoverageQuery{Tenant: v.Get("tenant"), Bucket: s.cfg.Bucket}
	err := checkNames(v)
	if err == nil {
		q.From, q.To, q.Step, err = s.parseWindow(v)
	}
	if err == nil {
		err = q.Validate()
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	bands, err := s.deps.Expectations.Coverage(r.Context(), q)
	if err != nil {
		if errors.Is(err, storage.ErrBadQuery) {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		s.deps.Log.Warn("coverage query failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, errors.New("store unavailable"))
		return
	}
	start, n := q.Rate("").Steps()
	step := int64(q.Step / time.Second)
	resp := coverageResponse{Tenant: q.Tenant, Step: step, From: q.From.UTC().Format(time.RFC3339),
		To: q.To.UTC().Format(time.RFC3339), Streams: []coverageStream{}}
	var cur *coverageStream
	var covered []uint64 // by stream: the sum of its steps' max(observed, received)
	for _, b := range bands {
		if cur == nil || cur.Source != b.Source {
			resp.Streams = append(resp.Streams, coverageStream{Source: b.Source, Points: make([]coveragePoint, n)})
			cur = &resp.Streams[len(resp.Streams)-1]
			covered = append(covered, 0)
			for i := range cur.Points {
				cur.Points[i].T = time.Unix(start+int64(i)*step, 0).UTC().Format(time.RFC3339)
			}
		}
		if b.I < 0 || b.I >= int64(n) {
			continue
		}
		p := &cur.Points[b.I]
		obs, recv := b.Observed, b.Received
		p.Expected, p.Observed, p.Received, p.Share = round2(b.Expected), &obs, &recv, share(b.Expected, max(obs, recv))
		cur.Expected += b.Expected
		cur.Observed += b.Observed
		cur.Received += b.Received
		covered[len(resp.Streams)-1] += max(obs, recv)
	}
	for i := range resp.Streams {
		st := &resp.Streams[i]
		st.Share = share(st.Expected, covered[i])
		st.Expected = *round2(st.Expected)
	}
	writeJSON(w, resp)
}

// share is the part of expected that observed covers, at most 1; next to
// nothing expected (under half an event) is fully covered.
func share(expected float64, observed uint64) *float64 {
	if expected < 0.5 {
		return round2(1)
	}
	return round2(math.Min(1, float64(observed)/expected))
}

// round2 rounds to hundredths: the figures are estimates.
func round2(x float64) *float64 {
	r := math.Round(x*100) / 100
	return &r
}
