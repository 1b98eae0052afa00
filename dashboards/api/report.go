package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/gapwatch/gapwatch/dashboards/report"
)

// reportTimeout bounds the time to build and send one report.
const reportTimeout = 10 * time.Minute

// reportStore is the report's view of the server's stores.
type reportStore struct {
	GapReader
	ExpectationReader
}

// report serves GET /api/v1/report?tenant=&from=&to=: the coverage report of
// a tenant over [from, to), as package report's JSON (what `gapwatch report
// --api` renders).
func (s *Server) report(w http.ResponseWriter, r *http.Request) {
	if s.deps.Gaps == nil || s.deps.Expectations == nil {
		writeError(w, http.StatusServiceUnavailable, errors.New("a report needs the gap store and the detect role's expectations"))
		return
	}
	v := r.URL.Query()
	q := report.Query{Tenant: v.Get("tenant"), Bucket: s.cfg.Bucket}
	var err error
	if q.From, q.To, err = parsePeriod(v); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	// A long period of many sources takes longer than the server's write
	// timeout, which suits the other reads.
	if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(reportTimeout)); err != nil {
		s.deps.Log.Debug("extending the write deadline", "err", err)
	}
	rep, err := report.Build(r.Context(), reportStore{s.deps.Gaps, s.deps.Expectations}, q)
	if err != nil {
		s.storeError(w, "report", err)
		return
	}
	writeJSON(w, rep)
}
