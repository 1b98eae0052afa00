package api_test

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/dashboards/api"
	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// GET /api/v1/explain replays a stream's stored counts with the detector's
// settings: a stream at 10 events a minute, silent for half an hour from
// base, has the silence opened at its start, the explained buckets those of
// the period (what detect.ExplainStream gives for the same counts), and the
// replay from its first count within the history.
func TestExplain(t *testing.T) {
	st := memstore.New(0)
	var counts []storage.Count
	for at := base.Add(-3 * time.Hour); at.Before(base.Add(time.Hour)); at = at.Add(time.Minute) {
		if at.Before(base) || !at.Before(base.Add(30*time.Minute)) {
			counts = append(counts, storage.Count{Tenant: "acme", Source: "fw", Clock: storage.Arrival, Bucket: at.Unix(), Events: 10})
		}
		counts = append(counts, storage.Count{Tenant: "acme", Source: "dns", Clock: storage.Arrival, Bucket: at.Unix(), Events: 4})
	}
	require.NoError(t, st.Write(context.Background(), storage.Batch{Counts: counts}))
	cfg := api.Config{Bucket: time.Minute, Explain: api.ExplainConfig{Engine: detect.Config{Bucket: time.Minute}, History: 2 * time.Hour}}
	srv := httptest.NewServer(api.New(cfg, api.Deps{Rates: st, Counts: st}).Handler())
	t.Cleanup(srv.Close)
	from, to := base.Add(-30*time.Minute), base.Add(time.Hour)
	q := url.Values{"tenant": {"acme"}, "source": {"fw"}, "from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
	code, body := get(t, srv.URL+"/api/v1/explain?"+q.Encode())
	require.Equal(t, http.StatusOK, code, body)
	var resp struct {
		ReplayedFrom string `json:"replayed_from"`
		Buckets      []struct {
			Bucket, State string
			Observed      uint64
			SilenceLogP   *float64 `json:"silence_logp"`
			Threshold     float64  `json:"silence_threshold"`
		}
		Opened []struct {
			Kind       string
			StartedAt  string `json:"started_at"`
			DetectedAt string `json:"detected_at"`
		}
	}
	require.NoError(t, json.Unmarshal([]byte(body), &resp))
	require.Equal(t, from.Add(-2*time.Hour).Format(time.RFC3339), resp.ReplayedFrom, "the first count within the history")
	require.Len(t, resp.Buckets, 90)
	require.Equal(t, from.Format(time.RFC3339), resp.Buckets[0].Bucket)
	require.Len(t, resp.Opened, 1)
	require.Equal(t, "silence", resp.Opened[0].Kind)
	require.Equal(t, base.Format(time.RFC3339), resp.Opened[0].StartedAt)
	detected, err := time.Parse(time.RFC3339, resp.Opened[0].DetectedAt)
	require.NoError(t, err)
	openedIn := detected.Add(-time.Second).Truncate(time.Minute).Format(time.RFC3339) // the bucket the silence opened in
	found := false
	for _, b := range resp.Buckets {
		if b.Bucket == openedIn {
			found = true
			require.Equal(t, "gap", b.State)
			require.NotNil(t, b.SilenceLogP)
			require.Less(t, *b.SilenceLogP, b.Threshold, "the run's probability crossed")
		}
	}
	require.True(t, found, openedIn)

	// The same as the engine's own replay of those counts.
	var fw []storage.Count
	for _, c := range counts {
		if c.Source == "fw" && !time.Unix(c.Bucket, 0).Before(from.Add(-2*time.Hour)) {
			fw = append(fw, c)
		}
	}
	xs, opened, err := detect.ExplainStream(detect.Config{Bucket: time.Minute}, "acme", "fw", fw, from, to)
	require.NoError(t, err)
	require.Len(t, xs, len(resp.Buckets))
	require.Len(t, opened, 1)
	for i, x := range xs {
		require.Equal(t, x.State, resp.Buckets[i].State)
		require.Equal(t, x.Observed, resp.Buckets[i].Observed)
	}

	for _, c := range []struct {
		q    url.Values
		code int
		want string
	}{
		{url.Values{"tenant": {"acme"}, "source": {"nope"}, "from": q["from"], "to": q["to"]}, http.StatusNotFound, `no counts of tenant \"acme\" and source \"nope\"`},
		{url.Values{"tenant": {"acme"}, "from": q["from"], "to": q["to"]}, http.StatusBadRequest, "tenant and source are required"},
		{url.Values{"tenant": {"acme"}, "source": {"fw"}, "from": {"yesterday"}, "to": q["to"]}, http.StatusBadRequest, "from: want RFC 3339"},
		{url.Values{"tenant": {"acme"}, "source": {"fw"}, "from": q["to"], "to": q["from"]}, http.StatusBadRequest, "from must be before to"},
		{url.Values{"tenant": {"acme"}, "source": {"fw"}, "from": {"2026-11-20T09:59:30Z"}, "to": q["to"]}, http.StatusBadRequest, "multiples of the bucket width"},
		{url.Values{"tenant": {"acme"}, "source": {"fw"}, "from": {"2026-09-01T00:00:00Z"}, "to": q["to"]}, http.StatusBadRequest, "more than 744h0m0s"},
	} {
		code, body := get(t, srv.URL+"/api/v1/explain?"+c.q.Encode())
		require.Equal(t, c.code, code, body)
		require.Contains(t, body, c.want)
	}
	// A period past the ingest watermark is refused: counts not stored yet
	// would read as empty (a watermark inside the period's last bucket
	// leaves that bucket incomplete).
	for _, c := range []struct {
		wm   time.Time
		code int
	}{{to.Add(-30 * time.Second), http.StatusBadRequest}, {to, http.StatusOK}, {to.Add(time.Hour), http.StatusOK}} {
		ws := httptest.NewServer(api.New(cfg, api.Deps{Rates: st, Counts: st, Watermark: fixedWatermark(c.wm)}).Handler())
		code, body := get(t, ws.URL+"/api/v1/explain?"+q.Encode())
		ws.Close()
		require.Equal(t, c.code, code, "watermark %s: %s", c.wm, body)
		if c.code != http.StatusOK {
			require.Contains(t, body, "is after the ingest watermark")
		}
	}
	none := httptest.NewServer(api.New(cfg, api.Deps{Rates: st}).Handler())
	t.Cleanup(none.Close)
	code, _ = get(t, none.URL+"/api/v1/explain?"+q.Encode())
	require.Equal(t, http.StatusServiceUnavailable, code)
}

// A log probability that underflowed is −Inf: JSON has no such number, so
// it is null, and null reads back as −Inf; finite values round-trip exactly.
func TestExplainNumbers(t *testing.T) {
	for _, v := range []float64{math.Inf(-1), -53.732291876, 0, 1e-300, 14.922} {
		b, err := json.Marshal(api.Num(v))
		require.NoError(t, err)
		if math.IsInf(v, 0) {
			require.Equal(t, "null", string(b))
		}
		var back api.Num
		require.NoError(t, json.Unmarshal(b, &back))
		require.Equal(t, v, float64(back))
	}
}

// fixedWatermark is an ingest watermark that stays put.
type fixedWatermark time.Time

func (w fixedWatermark) Watermark(context.Context) (time.Time, string, error) {
	return time.Time(w), "", nil
}
