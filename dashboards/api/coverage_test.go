package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/dashboards/api"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// TestBandsAndCoverage: the rates API shows the detector's stored band on the
// arrival clock, and /api/v1/coverage the share of the expected events that
// arrived (on time, or late by event time), per source and step, null where
// there was no baseline.
func TestBandsAndCoverage(t *testing.T) {
	st := memstore.New(0)
	ctx := context.Background()
	require.NoError(t, st.Write(ctx, storage.Batch{Counts: []storage.Count{
		{Tenant: "acme", Source: "fw", Clock: storage.Arrival, Bucket: base.Unix(), Events: 9},
		{Tenant: "acme", Source: "fw", Clock: storage.Event, Bucket: base.Unix(), Events: 9, Arrival: base.Unix() + 30},
		{Tenant: "acme", Source: "dns", Clock: storage.Event, Bucket: base.Add(time.Minute).Unix(), Events: 4, Arrival: base.Unix() + 90},
	}}))
	// The hole of minute 1 is filled an hour later: received counts it, observed (as judged) does not.
	require.NoError(t, st.Write(ctx, storage.Batch{Counts: []storage.Count{
		{Tenant: "acme", Source: "fw", Clock: storage.Arrival, Bucket: base.Add(time.Hour).Unix(), Events: 8},
		{Tenant: "acme", Source: "fw", Clock: storage.Event, Bucket: base.Add(time.Minute).Unix(), Events: 8, Arrival: base.Unix() + 3600},
	}}))
	exp := func(source string, minute int, expected float64, observed uint64, state string) storage.Expectation {
		return storage.Expectation{Tenant: "acme", Source: source, Bucket: base.Add(time.Duration(minute) * time.Minute).Unix(),
			Expected: expected, Lower: expected / 2, Upper: expected * 2, Observed: observed, State: state}
	}
	require.NoError(t, st.WriteExpectations(ctx, []storage.Expectation{
		exp("fw", 0, 10, 9, "ok"), exp("fw", 1, 10, 0, "gap"), exp("fw", 2, 0.2, 0, "ok"),
		exp("dns", 1, 4, 4, "ok"),
		{Tenant: "other", Source: "fw", Bucket: base.Unix(), Expected: 99, State: "ok"},
	}))
	srv := httptest.NewServer(api.New(api.Config{Bucket: time.Minute}, api.Deps{Rates: st, Expectations: st}).Handler())
	t.Cleanup(srv.Close)

	q := url.Values{"tenant": {"acme"}, "source": {"fw"}, "from": {base.Format(time.RFC3339)}, "to": {base.Add(4 * time.Minute).Format(time.RFC3339)}}
	code, body := get(t, srv.URL+"/api/v1/rates?"+q.Encode())
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"tenant":"acme","source":"fw","step":60,"clock":"arrival","points":[
		{"t":"2026-11-20T10:00:00Z","events":9,"expected":10,"lower":5,"upper":20},
		{"t":"2026-11-20T10:01:00Z","events":0,"expected":10,"lower":5,"upper":20},
		{"t":"2026-11-20T10:02:00Z","events":0,"expected":0.2,"lower":0.1,"upper":0.4},
		{"t":"2026-11-20T10:03:00Z","events":0,"expected":null,"lower":null,"upper":null}]}`, body)
	q.Set("clock", "event")
	code, body = get(t, srv.URL+"/api/v1/rates?"+q.Encode())
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"events":0,"expected":null`, "no baseline on the event clock")

	q = url.Values{"tenant": {"acme"}, "from": {base.Format(time.RFC3339)}, "to": {base.Add(4 * time.Minute).Format(time.RFC3339)}, "step": {"2m"}}
	code, body = get(t, srv.URL+"/api/v1/coverage?"+q.Encode())
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"tenant":"acme","step":120,"from":"2026-11-20T10:00:00Z","to":"2026-11-20T10:04:00Z","streams":[
		{"source":"dns","expected_events":4,"observed_events":4,"received_events":4,"share":1,"points":[
			{"t":"2026-11-20T10:00:00Z","expected":4,"observed":4,"received":4,"share":1},
			{"t":"2026-11-20T10:02:00Z","expected":null,"observed":null,"received":null,"share":null}]},
		{"source":"fw","expected_events":20.2,"observed_events":9,"received_events":17,"share":0.84,"points":[
			{"t":"2026-11-20T10:00:00Z","expected":20,"observed":9,"received":17,"share":0.85},
			{"t":"2026-11-20T10:02:00Z","expected":0.2,"observed":0,"received":0,"share":1}]}]}`, body)

	for _, bad := range []string{"from=x", "step=90s", "step=1s"} {
		code, _ = get(t, srv.URL+"/api/v1/coverage?tenant=acme&"+bad)
		require.Equal(t, http.StatusBadRequest, code, bad)
	}
	code, _ = get(t, srv.URL+"/api/v1/coverage?from="+url.QueryEscape(base.Format(time.RFC3339)))
	require.Equal(t, http.StatusBadRequest, code, "tenant is required")

	noDetect := httptest.NewServer(api.New(api.Config{Bucket: time.Minute}, api.Deps{Rates: st}).Handler())
	t.Cleanup(noDetect.Close)
	code, _ = get(t, noDetect.URL+"/api/v1/coverage?tenant=acme")
	require.Equal(t, http.StatusServiceUnavailable, code)
}
