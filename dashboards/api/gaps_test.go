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

type streamList []api.Stream

func (l streamList) Streams(tenant, source string) []api.Stream {
	var out []api.Stream
	for _, s := range l {
		if (tenant == "" || s.Tenant == tenant) && (source == "" || s.Source == source) {
			out = append(out, s)
		}
	}
	return out
}

func TestGapsAndStreams(t *testing.T) {
	st := memstore.New(0)
	gap := func(typ string, seq uint32, ended time.Time, expected float64) storage.Alert {
		return storage.Alert{ID: typ, Type: typ, Time: base, Key: "acme/fw", GapID: "g1", Tenant: "acme", Source: "fw", Kind: "silence",
			StartedAt: base, DetectedAt: base.Add(2 * time.Minute), EndedAt: ended, Expected: expected, Missing: expected, Seq: seq}
	}
	require.NoError(t, st.WriteAlerts(context.Background(), storage.AlertBatch{
		DetectProgress: storage.DetectProgress{Shards: 1, Seq: 1},
		Alerts:         []storage.Alert{gap("io.gapwatch.gap.opened", 0, time.Time{}, 600.4)},
	}))
	srv := httptest.NewServer(api.New(api.Config{}, api.Deps{Rates: st, Gaps: st, Streams: streamList{
		{Tenant: "acme", Source: "fw", Status: "gap", LastSeen: base, EventsPerMin: 300.12345, HistoryHours: 100.5, Profile: "hourly", Weekend: "learned"},
		{Tenant: "other", Source: "dns", Status: "learning", HistoryHours: 0.25, Profile: "short-term", Weekend: "recent"},
		{Tenant: "third", Source: "edr", Status: "ok", HistoryHours: 400, Profile: "weekly", Weekend: "profile"},
	}}).Handler())
	t.Cleanup(srv.Close)

	code, body := get(t, srv.URL+"/api/v1/gaps?state=open")
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `[{"id":"g1","tenant":"acme","source":"fw","kind":"silence","started_at":"2026-11-20T10:00:00Z",
		"detected_at":"2026-11-20T10:02:00Z","ended_at":null,"expected_events":600,"observed_events":0,"missing_events":600,"planned":false}]`, body)
	code, body = get(t, srv.URL+"/api/v1/gaps?state=resolved")
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `[]`, body)

	require.NoError(t, st.WriteAlerts(context.Background(), storage.AlertBatch{
		DetectProgress: storage.DetectProgress{Shards: 1, Seq: 2},
		Alerts:         []storage.Alert{gap("io.gapwatch.gap.resolved", 1, base.Add(20*time.Minute), 1200)},
	}))
	q := url.Values{"tenant": {"acme"}, "from": {base.Add(10 * time.Minute).Format(time.RFC3339)}}
	code, body = get(t, srv.URL+"/api/v1/gaps?"+q.Encode())
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"ended_at":"2026-11-20T10:20:00Z"`)
	require.Contains(t, body, `"missing_events":1200`)

	for _, bad := range []string{"state=closed", "from=yesterday", "from=2026-11-20T11:00:00Z&to=2026-11-20T10:00:00Z"} {
		code, body = get(t, srv.URL+"/api/v1/gaps?"+bad)
		require.Equal(t, http.StatusBadRequest, code, "%s: %s", bad, body)
	}

	code, body = get(t, srv.URL+"/api/v1/streams?tenant=acme")
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `[{"tenant":"acme","source":"fw","status":"gap","last_seen":"2026-11-20T10:00:00Z","events_per_min":300.123,
		"history_hours":100.5,"profile":"hourly","weekend":"learned"}]`, body)
	code, body = get(t, srv.URL+"/api/v1/streams")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"last_seen":null`)
	require.Contains(t, body, `"history_hours":0.25,"profile":"short-term","weekend":"recent"`)
	require.Contains(t, body, `"history_hours":400,"profile":"weekly","weekend":"profile"`)
}

func TestGapsAndStreamsWithoutDetection(t *testing.T) {
	srv := server(t, memstore.New(0))
	for _, path := range []string{"/api/v1/gaps", "/api/v1/streams"} {
		code, body := get(t, srv.URL+path)
		require.Equal(t, http.StatusServiceUnavailable, code, "%s: %s", path, body)
	}
}
