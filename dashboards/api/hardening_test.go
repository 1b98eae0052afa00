package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/dashboards/api"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// fullServer serves every read over st, as `gapwatch run` does.
func fullServer(t *testing.T, st *memstore.Store) *httptest.Server {
	srv := httptest.NewServer(api.New(api.Config{Bucket: time.Minute}, api.Deps{Rates: st, Gaps: st, Silences: st, Expectations: st,
		Tenants: st, Counts: st, Streams: streamList{}}).Handler())
	t.Cleanup(srv.Close)
	return srv
}

// The probe of issue 18: a range of ten millennia at a step that slips under
// the point cap once the duration saturates at 292 years.
func TestTimesOutsideASaneWindowAreRefused(t *testing.T) {
	st := memstore.New(0)
	srv := fullServer(t, st)
	for _, path := range []string{
		"/api/v1/rates?tenant=acme&source=fw&from=0001-01-01T00:00:00Z&to=9999-12-31T00:00:00Z&step=13975m",
		"/api/v1/rates?tenant=acme&source=fw&from=1969-12-31T23:00:00Z&to=1970-01-01T01:00:00Z",
		"/api/v1/rates?tenant=acme&source=fw&from=2199-12-31T23:00:00Z&to=2200-01-01T01:00:00Z",
		"/api/v1/coverage?tenant=acme&from=0001-01-01T00:00:00Z&to=9999-12-31T00:00:00Z&step=13975m",
		"/api/v1/gaps?from=0001-01-01T00:00:00Z",
		"/api/v1/gaps?to=9999-12-31T00:00:00Z",
		"/api/v1/report?tenant=acme&from=0001-01-01T00:00:00Z&to=9999-12-31T00:00:00Z",
		"/api/v1/explain?tenant=acme&source=fw&from=0001-01-01T00:00:00Z&to=9999-12-31T00:00:00Z",
	} {
		code, body := get(t, srv.URL+path)
		require.Equal(t, http.StatusBadRequest, code, "%s: %.200s", path, body)
		require.Contains(t, body, "between 1970 and 2200", path)
	}
	code, body := get(t, srv.URL+"/api/v1/rates?tenant=acme&source=fw&from=1970-01-01T00:00:00Z&to=1970-01-01T01:00:00Z")
	require.Equal(t, http.StatusOK, code, body)
}

func TestRateQueryCountsPointsWithoutSaturating(t *testing.T) {
	q := storage.RateQuery{Tenant: "a", Source: "s", From: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		To: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), Step: 13975 * time.Minute}
	_, n := q.Steps()
	require.Greater(t, n, storage.MaxPoints, "the probe is past the cap ...")
	require.Less(t, int(q.To.Sub(q.From)/q.Step), storage.MaxPoints, "... which the saturated duration slips under")
	require.ErrorIs(t, q.Validate(), storage.ErrBadQuery)
	q.From, q.To, q.Step = storage.MinTime, storage.MaxTime, time.Minute
	require.ErrorIs(t, q.Validate(), storage.ErrBadQuery, "230 years of minutes")
}

func gapAlerts(n int) []storage.Alert {
	out := make([]storage.Alert, n)
	for i := range out {
		started := base.Add(time.Duration(i/3) * time.Second) // threes start together: ids order them
		out[i] = storage.Alert{ID: fmt.Sprint("a", i), Type: "io.gapwatch.gap.opened", Time: started, GapID: fmt.Sprintf("g%05d", i),
			Tenant: "acme", Source: "fw", Kind: "silence", StartedAt: started, DetectedAt: started, Expected: 1, Missing: 1}
	}
	return out
}

func getGaps(t *testing.T, u string) ([]map[string]any, http.Header) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	var gs []map[string]any
	require.NoError(t, json.Unmarshal(b, &gs))
	return gs, resp.Header
}

func TestGapsSayWhenCutAndPage(t *testing.T) {
	st := memstore.New(0)
	n := storage.MaxGaps + 1
	require.NoError(t, st.WriteAlerts(context.Background(), storage.AlertBatch{DetectProgress: storage.DetectProgress{Shards: 1, Seq: 1}, Alerts: gapAlerts(n)}))
	srv := fullServer(t, st)

	gs, h := getGaps(t, srv.URL+"/api/v1/gaps")
	require.Len(t, gs, storage.MaxGaps)
	require.Equal(t, "10000", h.Get(api.TruncatedHeader), "cut, and says so")
	require.Equal(t, "g00000", gs[0]["id"], "the oldest first")
	rest, h := getGaps(t, srv.URL+"/api/v1/gaps?cursor="+url.QueryEscape(h.Get(api.NextCursorHeader)))
	require.Len(t, rest, 1)
	require.Equal(t, fmt.Sprintf("g%05d", n-1), rest[0]["id"])
	require.Empty(t, h.Get(api.TruncatedHeader))
	require.Empty(t, h.Get(api.NextCursorHeader))

	// Small pages walk every gap once, in order, across equal starts.
	var ids []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		gs, h := getGaps(t, srv.URL+"/api/v1/gaps?limit=2&to="+base.Add(3*time.Second).Format(time.RFC3339)+"&cursor="+url.QueryEscape(cursor))
		for _, g := range gs {
			ids = append(ids, g["id"].(string))
		}
		if cursor = h.Get(api.NextCursorHeader); cursor == "" {
			require.Empty(t, h.Get(api.TruncatedHeader))
			break
		}
		require.Equal(t, "2", h.Get(api.TruncatedHeader))
	}
	require.Equal(t, []string{"g00000", "g00001", "g00002", "g00003", "g00004", "g00005", "g00006", "g00007", "g00008"}, ids)
	gs, h = getGaps(t, srv.URL+"/api/v1/gaps?limit=9&to="+base.Add(3*time.Second).Format(time.RFC3339))
	require.Len(t, gs, 9)
	require.Empty(t, h.Get(api.TruncatedHeader), "exactly the limit is not cut")

	for _, bad := range []string{"limit=0", "limit=10001", "limit=x", "cursor=nonsense", "cursor=e30"} {
		code, body := get(t, srv.URL+"/api/v1/gaps?"+bad)
		require.Equal(t, http.StatusBadRequest, code, "%s: %s", bad, body)
	}
}

func TestControlCharactersInNamesAreRefused(t *testing.T) {
	st := memstore.New(0)
	srv := fullServer(t, st)
	window := "&from=2026-11-20T10:00:00Z&to=2026-11-20T11:00:00Z"
	for _, name := range []string{"a\x00b", "a\rb", "a\nb", "a\u0085b", "a\u009bb", "a\x7fb", "\xff"} {
		n := url.QueryEscape(name)
		for _, path := range []string{
			"/api/v1/rates?tenant=" + n + "&source=fw" + window,
			"/api/v1/rates?tenant=acme&source=" + n + window,
			"/api/v1/gaps?tenant=" + n,
			"/api/v1/gaps?source=" + n,
			"/api/v1/coverage?tenant=" + n + window,
			"/api/v1/streams?tenant=" + n,
			"/api/v1/streams?source=" + n,
			"/api/v1/tenants?tenant=" + n,
			"/api/v1/report?tenant=" + n + window,
			"/api/v1/explain?tenant=" + n + "&source=fw" + window,
			"/api/v1/explain?tenant=acme&source=" + n + window,
		} {
			code, body := get(t, srv.URL+path)
			require.Equal(t, http.StatusBadRequest, code, "%q %s: %s", name, path, body)
		}
		for _, field := range []string{"tenant", "source"} {
			if name == "\xff" {
				continue // JSON has no invalid UTF-8
			}
			in := map[string]string{"tenant": "acme", "source": "fw", "ends_at": "2026-11-20T12:00:00Z", "starts_at": "2026-11-20T11:00:00Z"}
			in[field] = name
			b, err := json.Marshal(in)
			require.NoError(t, err)
			resp, err := http.Post(srv.URL+"/api/v1/silences", "application/json", strings.NewReader(string(b)))
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, "silence %s %q", field, name)
		}
	}
	// Names are otherwise free text.
	code, body := get(t, srv.URL+"/api/v1/rates?tenant="+url.QueryEscape(`x' OR '1'='1 ü 租户 "\`)+"&source=fw"+window)
	require.Equal(t, http.StatusOK, code, body)
}
