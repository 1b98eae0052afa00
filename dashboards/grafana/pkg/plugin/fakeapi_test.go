package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"
	"github.com/stretchr/testify/require"
)

// fakeAPI is a stand-in for gapwatch's API, for unit tests of the plugin's
// own logic; the end-to-end test runs against a real gapwatch. It answers
// like dashboards/api: grids aligned to the step, caps enforced, tokens
// checked.
type fakeAPI struct {
	t       testing.TB
	token   string                                            // required when set
	tenants map[string][]string                               // tenant -> sources
	gaps    []map[string]any                                  // answered as is (filtered by tenant)
	share   func(tenant, source string, t time.Time) *float64 // nil: learning
	bucket  time.Duration
	// pageSize, when set, pages the gap listing as the API does at its limit.
	pageSize int
	// noWatermark, when set, answers the status's watermark as unknown.
	noWatermark string

	mu       sync.Mutex
	requests []string // path?query of every request
	// cache, when not nil, keeps each answer by request URI, so that a
	// benchmark measures the plugin and not this stub's JSON encoding.
	cache map[string][]byte
}

func newFakeAPI(t testing.TB) *fakeAPI {
	return &fakeAPI{
		t:      t,
		bucket: time.Minute,
		tenants: map[string][]string{
			"acme":    {"edr", "firewall"},
			"globex":  {"dns"},
			"initech": {},
		},
		share: func(_, _ string, _ time.Time) *float64 { v := 1.0; return &v },
	}
}

func (f *fakeAPI) serve() *httptest.Server {
	s := httptest.NewServer(f)
	f.t.Cleanup(s.Close)
	return s
}

func (f *fakeAPI) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.URL.RequestURI())
	cached, ok := f.cache[r.URL.RequestURI()]
	f.mu.Unlock()
	if ok {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(cached)
		return
	}
	if f.cache != nil {
		rec := httptest.NewRecorder()
		f.answer(rec, r)
		f.mu.Lock()
		f.cache[r.URL.RequestURI()] = rec.Body.Bytes()
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	f.answer(w, r)
}

func (f *fakeAPI) answer(w http.ResponseWriter, r *http.Request) {
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unknown token"})
		return
	}
	q := r.URL.Query()
	switch r.URL.Path {
	case "/api/v1/status":
		if f.noWatermark != "" {
			writeJSON(w, 200, map[string]any{"version": "v1.2.3", "roles": []string{"api"},
				"watermark": nil, "lag_seconds": nil, "watermark_unknown": f.noWatermark})
			return
		}
		writeJSON(w, 200, map[string]any{"version": "v1.2.3", "roles": []string{"ingest", "detect", "api"},
			"watermark": "2026-12-05T07:00:00Z", "lag_seconds": 42.4})
	case "/api/v1/tenants":
		out := []map[string]any{}
		for _, name := range sortedKeys(f.tenants) {
			out = append(out, map[string]any{"tenant": name, "sources": f.tenants[name]})
		}
		writeJSON(w, 200, out)
	case "/api/v1/gaps":
		out := []map[string]any{}
		for _, g := range f.gaps {
			if tn := q.Get("tenant"); tn != "" && g["tenant"] != tn {
				continue
			}
			out = append(out, g)
		}
		if f.pageSize > 0 {
			first, _ := strconv.Atoi(q.Get("cursor"))
			out = out[min(first, len(out)):]
			if len(out) > f.pageSize {
				out = out[:f.pageSize]
				w.Header().Set("X-Gapwatch-Truncated", strconv.Itoa(f.pageSize))
				w.Header().Set("X-Gapwatch-Next-Cursor", strconv.Itoa(first+f.pageSize))
			}
		}
		writeJSON(w, 200, out)
	case "/api/v1/streams":
		writeJSON(w, 200, []map[string]any{
			{"tenant": "acme", "source": "edr", "status": "ok", "last_seen": "2026-12-05T06:59:00Z", "events_per_min": 300.5, "profile": "weekly", "weekend": "profile"},
			{"tenant": "acme", "source": "firewall", "status": "learning", "last_seen": nil, "events_per_min": 0, "profile": "short-term", "weekend": "recent"},
		})
	case "/api/v1/rates":
		start, n, step, err := f.grid(q, 11000)
		if err != nil {
			writeJSON(w, 400, map[string]string{"error": err.Error()})
			return
		}
		pts := make([]map[string]any, n)
		for i := range pts {
			t := start.Add(time.Duration(i) * step)
			pts[i] = map[string]any{"t": t.Format(time.RFC3339), "events": 60 * i, "expected": nil, "lower": nil, "upper": nil}
			if i%2 == 0 { // a baseline on every other step; none (learning) on the others
				pts[i]["expected"], pts[i]["lower"], pts[i]["upper"] = 60.0, 40.0, 80.0
			}
		}
		writeJSON(w, 200, map[string]any{"tenant": q.Get("tenant"), "source": q.Get("source"),
			"step": int(step / time.Second), "clock": q.Get("clock"), "points": pts})
	case "/api/v1/explain":
		// Minute buckets over [from, to): 60 events each, the last three
		// empty: a silence opened at the first of them (its run's log
		// probability −20 against −16), the next one's underflowed (null).
		from, err1 := time.Parse(time.RFC3339, q.Get("from"))
		to, err2 := time.Parse(time.RFC3339, q.Get("to"))
		if err1 != nil || err2 != nil || !from.Before(to) || from.Unix()%60 != 0 || to.Unix()%60 != 0 {
			writeJSON(w, 400, map[string]string{"error": "from and to must be multiples of the bucket width 1m0s"})
			return
		}
		n := int(to.Sub(from) / time.Minute)
		bs := make([]map[string]any, n)
		for i := range bs {
			b := map[string]any{"bucket": from.Add(time.Duration(i) * time.Minute).Format(time.RFC3339), "observed": 60,
				"expected": 60.0, "judged": 60.0, "dispersion": 0.01, "state": "ok", "silence_run": 0, "silence_logp": 0.0,
				"silence_threshold": -16.0, "drop50": 2.0, "drop75": 6.5, "rank": 1.0, "drop_threshold": 13.0,
				"drop50_raw": 2.0, "drop75_raw": 6.5, "low_quantile": 0.5, "late": 3.25, "late_threshold": 13.0}
			switch i {
			case n - 3:
				b["observed"], b["state"], b["silence_run"], b["silence_logp"] = 0, "gap", 1, -20.0
			case n - 2:
				b["observed"], b["state"], b["silence_run"], b["silence_logp"] = 0, "gap", 2, nil
			case n - 1:
				b["observed"], b["state"] = 0, "gap"
			}
			bs[i] = b
		}
		opened := []map[string]any{{"kind": "silence", "started_at": from.Add(time.Duration(n-3) * time.Minute).Format(time.RFC3339),
			"detected_at": from.Add(time.Duration(n-2) * time.Minute).Format(time.RFC3339), "expected_events": 180.0, "missing_events": 180.0}}
		writeJSON(w, 200, map[string]any{"tenant": q.Get("tenant"), "source": q.Get("source"), "from": q.Get("from"), "to": q.Get("to"),
			"replayed_from": from.Add(-time.Hour).Format(time.RFC3339), "buckets": bs, "opened": opened})
	case "/api/v1/coverage":
		tenant := q.Get("tenant")
		srcs := f.tenants[tenant]
		maxSteps := 11000
		if len(srcs) > 0 {
			maxSteps = min(maxSteps, 200000/len(srcs))
		}
		start, n, step, err := f.grid(q, maxSteps)
		if err != nil {
			writeJSON(w, 400, map[string]string{"error": err.Error()})
			return
		}
		streams := []map[string]any{}
		for _, src := range srcs {
			pts := make([]map[string]any, n)
			for i := range pts {
				t := start.Add(time.Duration(i) * step)
				pts[i] = map[string]any{"t": t.Format(time.RFC3339), "share": f.share(tenant, src, t)}
			}
			streams = append(streams, map[string]any{"source": src, "points": pts})
		}
		writeJSON(w, 200, map[string]any{"tenant": tenant, "step": int(step / time.Second), "streams": streams})
	default:
		writeJSON(w, 404, map[string]string{"error": "not found"})
	}
}

// grid checks from, to and step as the API does and returns its grid.
func (f *fakeAPI) grid(q map[string][]string, maxSteps int) (time.Time, int, time.Duration, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	step, err := time.ParseDuration(get("step"))
	if err != nil || step < f.bucket || step%f.bucket != 0 {
		return time.Time{}, 0, 0, fmt.Errorf("step %q must be a multiple of the bucket width %s", get("step"), f.bucket)
	}
	from, err1 := time.Parse(time.RFC3339, get("from"))
	to, err2 := time.Parse(time.RFC3339, get("to"))
	if err1 != nil || err2 != nil || !from.Before(to) {
		return time.Time{}, 0, 0, fmt.Errorf("bad range %q %q", get("from"), get("to"))
	}
	n := steps(from, to, step)
	if n > maxSteps {
		return time.Time{}, 0, 0, fmt.Errorf("bad query: %d steps, more than %d", n, maxSteps)
	}
	return gridStart(Window{From: from, To: to, Step: step}), n, step, nil
}

func sortedKeys(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// newTestDatasource is a datasource of url with token and jsonData.
func newTestDatasource(t testing.TB, url, token, jsonData string) *Datasource {
	t.Helper()
	s := backend.DataSourceInstanceSettings{URL: url, JSONData: json.RawMessage(jsonData), UID: "gw", Name: "gapwatch"}
	if token != "" {
		s.DecryptedSecureJSONData = map[string]string{"apiToken": token}
	}
	inst, err := NewDatasource(context.Background(), s)
	require.NoError(t, err)
	return inst.(*Datasource)
}

// captureLogs sends the SDK's logger to a buffer for the test's duration.
func captureLogs(t testing.TB) *logBuffer {
	b := &logBuffer{}
	old := backend.Logger
	backend.Logger = b
	t.Cleanup(func() { backend.Logger = old })
	return b
}

type logBuffer struct {
	mu sync.Mutex
	sb strings.Builder
}

func (b *logBuffer) log(level, msg string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprintf(&b.sb, "%s %s %v\n", level, msg, args)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.String()
}

func (b *logBuffer) Debug(msg string, args ...any)          { b.log("debug", msg, args...) }
func (b *logBuffer) Info(msg string, args ...any)           { b.log("info", msg, args...) }
func (b *logBuffer) Warn(msg string, args ...any)           { b.log("warn", msg, args...) }
func (b *logBuffer) Error(msg string, args ...any)          { b.log("error", msg, args...) }
func (b *logBuffer) With(...any) log.Logger                 { return b }
func (b *logBuffer) Level() log.Level                       { return log.Debug }
func (b *logBuffer) FromContext(context.Context) log.Logger { return b }

func httptestServer(t testing.TB, h http.Handler) string {
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}
