package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/dashboards/api"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

var base = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func server(t *testing.T, rates api.RateReader, checks ...api.Check) *httptest.Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "gapwatch_test_total", Help: "x"}))
	srv := httptest.NewServer(api.New(api.Config{Bucket: time.Minute}, api.Deps{Rates: rates, Gatherer: reg, Ready: checks}).Handler())
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestRates(t *testing.T) {
	st := memstore.New(0)
	require.NoError(t, st.Write(context.Background(), storage.Batch{Counts: []storage.Count{
		{Tenant: "acme", Source: "fw", Clock: storage.Arrival, Bucket: base.Add(time.Minute).Unix(), Events: 7},
		{Tenant: "acme", Source: "fw", Clock: storage.Event, Bucket: base.Unix(), Events: 7},
	}}))
	srv := server(t, st)
	q := url.Values{"tenant": {"acme"}, "source": {"fw"}, "from": {base.Format(time.RFC3339)}, "to": {base.Add(3 * time.Minute).Format(time.RFC3339)}}
	code, body := get(t, srv.URL+"/api/v1/rates?"+q.Encode())
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"tenant":"acme","source":"fw","step":60,"clock":"arrival","points":[
		{"t":"2026-11-20T10:00:00Z","events":0,"expected":null,"lower":null,"upper":null},
		{"t":"2026-11-20T10:01:00Z","events":7,"expected":null,"lower":null,"upper":null},
		{"t":"2026-11-20T10:02:00Z","events":0,"expected":null,"lower":null,"upper":null}]}`, body)

	q.Set("clock", "event")
	q.Set("step", "3m")
	code, body = get(t, srv.URL+"/api/v1/rates?"+q.Encode())
	require.Equal(t, http.StatusOK, code, body)
	var r struct {
		Step   int
		Clock  string
		Points []struct{ Events int }
	}
	require.NoError(t, json.Unmarshal([]byte(body), &r))
	require.Equal(t, 180, r.Step)
	require.Equal(t, "event", r.Clock)
	require.Len(t, r.Points, 1)
	require.Equal(t, 7, r.Points[0].Events)
}

func TestRatesRejectsBadParameters(t *testing.T) {
	srv := server(t, memstore.New(0))
	from, to := base.Format(time.RFC3339), base.Add(time.Hour).Format(time.RFC3339)
	for name, q := range map[string]url.Values{
		"no tenant":         {"source": {"fw"}},
		"bad clock":         {"tenant": {"a"}, "source": {"fw"}, "clock": {"wall"}},
		"bad step":          {"tenant": {"a"}, "source": {"fw"}, "step": {"soon"}},
		"step below bucket": {"tenant": {"a"}, "source": {"fw"}, "step": {"30s"}},
		"step off bucket":   {"tenant": {"a"}, "source": {"fw"}, "step": {"90s"}},
		"bad from":          {"tenant": {"a"}, "source": {"fw"}, "from": {"yesterday"}},
		"from after to":     {"tenant": {"a"}, "source": {"fw"}, "from": {to}, "to": {from}},
		"too many points":   {"tenant": {"a"}, "source": {"fw"}, "from": {"2000-01-01T00:00:00Z"}, "to": {to}},
	} {
		code, body := get(t, srv.URL+"/api/v1/rates?"+q.Encode())
		require.Equal(t, http.StatusBadRequest, code, name)
		var e struct{ Error string }
		require.NoError(t, json.Unmarshal([]byte(body), &e), name)
		require.NotEmpty(t, e.Error, name)
	}
}

type brokenStore struct{}

func (brokenStore) Rates(context.Context, storage.RateQuery) ([]storage.Point, error) {
	return nil, errors.New("dial tcp 127.0.0.1:9000: connection refused")
}

func TestStoreErrorsAreUnavailableNotLeaked(t *testing.T) {
	srv := server(t, brokenStore{})
	code, body := get(t, srv.URL+"/api/v1/rates?tenant=a&source=b")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.NotContains(t, body, "127.0.0.1")
}

func TestHealthReadyMetrics(t *testing.T) {
	ready := errors.New("no partitions assigned yet")
	srv := server(t, memstore.New(0), api.Check{Name: "ingest", Fn: func(context.Context) error { return ready }})
	code, _ := get(t, srv.URL+"/healthz")
	require.Equal(t, http.StatusOK, code)
	code, body := get(t, srv.URL+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "ingest: no partitions assigned yet")
	ready = nil
	code, _ = get(t, srv.URL+"/readyz")
	require.Equal(t, http.StatusOK, code)
	code, body = get(t, srv.URL+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "gapwatch_test_total 0")
}
