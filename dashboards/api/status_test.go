package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/dashboards/api"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

func TestTenants(t *testing.T) {
	st := memstore.New(0)
	ctx := context.Background()
	var counts []storage.Count
	for _, n := range [][2]string{{"acme", "fw"}, {"acme", "DNS"}, {`x' OR '1'='1`, "fw"}, {"ünï", "a\"b"}, {"acme", "fw"}} {
		counts = append(counts, storage.Count{Tenant: n[0], Source: n[1], Bucket: base.Unix(), Events: 1})
	}
	require.NoError(t, st.Write(ctx, storage.Batch{Counts: counts, Offsets: []storage.Offset{{Topic: "logs", Next: 5, ArrivalHW: base}}}))
	// No detect role, no streams lister: tenants are still listed.
	srv := httptest.NewServer(api.New(api.Config{}, api.Deps{Rates: st, Tenants: st}).Handler())
	t.Cleanup(srv.Close)

	code, body := get(t, srv.URL+"/api/v1/tenants")
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `[{"tenant":"acme","sources":["DNS","fw"]},{"tenant":"x' OR '1'='1","sources":["fw"]},{"tenant":"ünï","sources":["a\"b"]}]`, body)
	code, body = get(t, srv.URL+"/api/v1/tenants?tenant=x%27+OR+%271%27%3D%271")
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `[{"tenant":"x' OR '1'='1","sources":["fw"]}]`, body)
	code, body = get(t, srv.URL+"/api/v1/tenants?tenant=nobody")
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `[]`, body)
	code, _ = get(t, srv.URL+"/api/v1/streams")
	require.Equal(t, http.StatusServiceUnavailable, code, "streams need the detect role; tenants do not")

	none := httptest.NewServer(api.New(api.Config{}, api.Deps{Rates: st}).Handler())
	t.Cleanup(none.Close)
	code, _ = get(t, none.URL+"/api/v1/tenants")
	require.Equal(t, http.StatusServiceUnavailable, code)
}

type cutLister struct{}

func (cutLister) StreamNames(context.Context, storage.StreamQuery) ([]storage.StreamName, bool, error) {
	return []storage.StreamName{{Tenant: "a", Source: "s"}}, true, nil
}

func TestTenantsSaysWhenCut(t *testing.T) {
	srv := httptest.NewServer(api.New(api.Config{}, api.Deps{Tenants: cutLister{}}).Handler())
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/api/v1/tenants")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "100000", resp.Header.Get(api.TruncatedHeader))

	st := memstore.New(0)
	srv2 := httptest.NewServer(api.New(api.Config{}, api.Deps{Tenants: st}).Handler())
	t.Cleanup(srv2.Close)
	resp, err = http.Get(srv2.URL + "/api/v1/tenants")
	require.NoError(t, err)
	resp.Body.Close()
	require.Empty(t, resp.Header.Get(api.TruncatedHeader), "not cut: no header")
}

type watermarkFunc func(ctx context.Context) (time.Time, string, error)

func (f watermarkFunc) Watermark(ctx context.Context) (time.Time, string, error) { return f(ctx) }

func TestStatus(t *testing.T) {
	st := memstore.New(0)
	ctx := context.Background()
	now := base.Add(90 * time.Second)
	// The watermark as cmd/gapwatch reads it: partitions from Kafka (here
	// fixed), progress from the store.
	wm := watermarkFunc(func(ctx context.Context) (time.Time, string, error) {
		return storage.IngestWatermark(ctx, st, []string{"logs"}, map[string][]int32{"logs": {0, 1}})
	})
	srv := httptest.NewServer(api.New(api.Config{Version: "v1.2.3", Roles: []string{"api"}, Bucket: 5 * time.Minute},
		api.Deps{Watermark: wm, Now: func() time.Time { return now }}).Handler())
	t.Cleanup(srv.Close)

	code, body := get(t, srv.URL+"/api/v1/status")
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"version":"v1.2.3","roles":["api"],"watermark":null,"lag_seconds":null,"bucket_seconds":300,
		"watermark_unknown":"no progress stored for logs/0 (is ingest running?)"}`, body)

	require.NoError(t, st.Write(ctx, storage.Batch{Offsets: []storage.Offset{
		{Topic: "logs", Partition: 0, Next: 5, ArrivalHW: base.Add(30 * time.Second)},
		{Topic: "logs", Partition: 1, Next: 9, ArrivalHW: base.Add(45 * time.Second)},
	}}))
	code, body = get(t, srv.URL+"/api/v1/status")
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"version":"v1.2.3","roles":["api"],"watermark":"2026-11-20T10:00:30Z","lag_seconds":60,"bucket_seconds":300}`, body)

	failing := httptest.NewServer(api.New(api.Config{Version: "v", Roles: []string{"api", "detect"}}, api.Deps{Watermark: watermarkFunc(
		func(context.Context) (time.Time, string, error) {
			return time.Time{}, "", errors.New("kafka: connection refused")
		})}).Handler())
	t.Cleanup(failing.Close)
	code, body = get(t, failing.URL+"/api/v1/status")
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"version":"v","roles":["api","detect"],"watermark":null,"lag_seconds":null,"bucket_seconds":60,
		"watermark_unknown":"reading it failed: kafka: connection refused"}`, body)
}
