package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/dashboards/api"
	"github.com/gapwatch/gapwatch/dashboards/report"
	"github.com/gapwatch/gapwatch/dashboards/report/reporttest"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

func TestReport(t *testing.T) {
	st := memstore.New(0)
	reporttest.Write(t, st)
	srv := httptest.NewServer(api.New(api.Config{Bucket: time.Minute}, api.Deps{Rates: st, Gaps: st, Expectations: st}).Handler())
	t.Cleanup(srv.Close)
	q := url.Values{"tenant": {reporttest.Tenant}, "from": {reporttest.From.Format(time.RFC3339)}, "to": {reporttest.To.Format(time.RFC3339)}}
	code, body := get(t, srv.URL+"/api/v1/report?"+q.Encode())
	require.Equal(t, http.StatusOK, code, body)
	var r report.Report
	require.NoError(t, json.Unmarshal([]byte(body), &r))
	require.Equal(t, reporttest.Tenant, r.Tenant)
	require.Len(t, r.Holes, 5)
	require.Equal(t, uint64(200), r.Totals.FilledLate)

	for _, bad := range []url.Values{
		{"from": q["from"], "to": q["to"]},
		{"tenant": {"acme"}, "from": {"yesterday"}, "to": q["to"]},
		{"tenant": {"acme"}, "from": q["to"], "to": q["from"]},
		{"tenant": {"acme"}, "from": {"2026-11-20T10:00:01Z"}, "to": q["to"]},
		{"tenant": {"acme"}, "from": {"0001-01-01T00:00:00Z"}, "to": {"9999-12-31T00:00:00Z"}},
	} {
		code, body := get(t, srv.URL+"/api/v1/report?"+bad.Encode())
		require.Equal(t, http.StatusBadRequest, code, "%v: %s", bad, body)
	}
	noDetect := httptest.NewServer(api.New(api.Config{}, api.Deps{Rates: st, Gaps: st}).Handler())
	t.Cleanup(noDetect.Close)
	code, _ = get(t, noDetect.URL+"/api/v1/report?"+q.Encode())
	require.Equal(t, http.StatusServiceUnavailable, code)
}
