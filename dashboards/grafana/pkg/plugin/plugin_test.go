package plugin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/stretchr/testify/require"
)

func TestLoadSettings(t *testing.T) {
	for _, tc := range []struct {
		name     string
		s        backend.DataSourceInstanceSettings
		want     Settings
		errMatch string
	}{
		{name: "url and token", s: backend.DataSourceInstanceSettings{URL: "http://gapwatch:8080",
			DecryptedSecureJSONData: map[string]string{"apiToken": " s3cret\n"}},
			want: Settings{URL: "http://gapwatch:8080", APIToken: "s3cret", Bucket: Duration(time.Minute)}},
		{name: "url in jsonData", s: backend.DataSourceInstanceSettings{JSONData: []byte(`{"url":"https://gw.example:8443/","bucket":"5m"}`)},
			want: Settings{URL: "https://gw.example:8443/", Bucket: Duration(5 * time.Minute)}},
		{name: "bucket in seconds", s: backend.DataSourceInstanceSettings{URL: "http://h:1", JSONData: []byte(`{"bucket":30}`)},
			want: Settings{URL: "http://h:1", Bucket: Duration(30 * time.Second)}},
		{name: "no url", s: backend.DataSourceInstanceSettings{}, errMatch: "no URL"},
		{name: "no scheme", s: backend.DataSourceInstanceSettings{URL: "gapwatch:8080"}, errMatch: "want http:// or https://"},
		{name: "no host", s: backend.DataSourceInstanceSettings{URL: "http:///api"}, errMatch: "no host"},
		{name: "credentials in url", s: backend.DataSourceInstanceSettings{URL: "http://u:pw-in-url@h:1"}, errMatch: "no credentials"},
		{name: "fractional bucket", s: backend.DataSourceInstanceSettings{URL: "http://h:1", JSONData: []byte(`{"bucket":"1500ms"}`)}, errMatch: "whole number of seconds"},
		{name: "bad bucket", s: backend.DataSourceInstanceSettings{URL: "http://h:1", JSONData: []byte(`{"bucket":"soon"}`)}, errMatch: "duration"},
		{name: "bad jsonData", s: backend.DataSourceInstanceSettings{URL: "http://h:1", JSONData: []byte(`[`)}, errMatch: "jsonData"},
		// A token in jsonData (where it would be stored in clear) is not read.
		{name: "token only from secureJsonData", s: backend.DataSourceInstanceSettings{URL: "http://h:1", JSONData: []byte(`{"apiToken":"clear"}`)},
			want: Settings{URL: "http://h:1", Bucket: Duration(time.Minute)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LoadSettings(tc.s)
			if tc.errMatch != "" {
				require.ErrorContains(t, err, tc.errMatch)
				require.NotContains(t, err.Error(), "pw-in-url")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	// The token never leaves through JSON.
	b, err := json.Marshal(Settings{URL: "http://h:1", APIToken: "s3cret"})
	require.NoError(t, err)
	require.NotContains(t, string(b), "s3cret")
}

func tr(from, to string) backend.TimeRange {
	f, _ := time.Parse(time.RFC3339, from)
	t, _ := time.Parse(time.RFC3339, to)
	return backend.TimeRange{From: f, To: t}
}

func TestWindow(t *testing.T) {
	day := tr("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z")
	for _, tc := range []struct {
		name     string
		tr       backend.TimeRange
		interval time.Duration
		bucket   time.Duration
		maxSteps int
		step     time.Duration
		err      error
	}{
		{name: "interval under the bucket", tr: day, interval: 15 * time.Second, bucket: time.Minute, maxSteps: maxRatePoints, step: time.Minute},
		{name: "rounded up to the bucket", tr: day, interval: 61 * time.Second, bucket: time.Minute, maxSteps: maxRatePoints, step: 2 * time.Minute},
		{name: "exact multiple", tr: day, interval: 5 * time.Minute, bucket: time.Minute, maxSteps: maxRatePoints, step: 5 * time.Minute},
		{name: "no interval (alert rule)", tr: day, bucket: time.Minute, maxSteps: maxRatePoints, step: time.Minute},
		{name: "5m bucket", tr: day, interval: 6 * time.Minute, bucket: 5 * time.Minute, maxSteps: maxRatePoints, step: 10 * time.Minute},
		// 30 days at 1m is 43 200 steps: coarsened to 4m (10 800).
		{name: "coarsened under the rate cap", tr: tr("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"), interval: time.Minute, bucket: time.Minute, maxSteps: maxRatePoints, step: 4 * time.Minute},
		// 7 days × 100 sources at 1m is 1 008 000 cells: 200 000 / 100 = 2 000 steps → 6m (1 680 steps).
		{name: "coarsened under the coverage cap", tr: tr("2026-11-24T00:00:00Z", "2026-12-01T00:00:00Z"), interval: time.Minute, bucket: time.Minute, maxSteps: maxCoverageCells / 100, step: 6 * time.Minute},
		// Ten years: still answered, at a coarse step.
		{name: "huge range", tr: tr("2016-12-01T00:00:00Z", "2026-12-01T00:00:00Z"), interval: time.Minute, bucket: time.Minute, maxSteps: maxRatePoints, step: 479 * time.Minute},
		{name: "empty range", tr: tr("2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z"), bucket: time.Minute, maxSteps: 10, err: errEmptyRange},
		{name: "reversed range", tr: tr("2026-12-02T00:00:00Z", "2026-12-01T00:00:00Z"), bucket: time.Minute, maxSteps: 10, err: errEmptyRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := window(tc.tr, tc.interval, tc.bucket, tc.maxSteps)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.step, w.Step)
			require.Zero(t, w.Step%tc.bucket, "a multiple of the bucket")
			n := steps(w.From, w.To, w.Step)
			require.LessOrEqual(t, n, tc.maxSteps)
			// The coarsest it had to be: one bucket less would not fit (or
			// would be under the interval).
			if w.Step > tc.bucket && w.Step-tc.bucket >= tc.interval {
				require.Greater(t, steps(w.From, w.To, w.Step-tc.bucket), tc.maxSteps)
			}
		})
	}
	// A range off whole seconds is widened to whole seconds; unaligned
	// ranges never exceed the cap, whatever the alignment.
	from := time.Date(2026, 12, 1, 0, 0, 0, 300e6, time.UTC)
	w, err := window(backend.TimeRange{From: from, To: from.Add(90 * time.Second)}, 0, time.Minute, 10)
	require.NoError(t, err)
	require.Equal(t, from.Truncate(time.Second), w.From)
	require.Equal(t, from.Truncate(time.Second).Add(91*time.Second), w.To)
	for off := range 120 {
		f := time.Date(2026, 12, 1, 0, 0, off, 0, time.UTC)
		w, err := window(backend.TimeRange{From: f, To: f.Add(100 * time.Minute)}, 0, time.Minute, 7)
		require.NoError(t, err)
		require.LessOrEqual(t, steps(w.From, w.To, w.Step), 7, "offset %ds", off)
	}
}

func query(refID, qt string, model map[string]any, r backend.TimeRange, interval time.Duration) backend.DataQuery {
	if model == nil {
		model = map[string]any{}
	}
	model["queryType"] = qt
	b, _ := json.Marshal(model)
	return backend.DataQuery{RefID: refID, QueryType: qt, JSON: b, TimeRange: r, Interval: interval}
}

func run(t *testing.T, d *Datasource, qs ...backend.DataQuery) map[string]backend.DataResponse {
	t.Helper()
	resp, err := d.QueryData(context.Background(), &backend.QueryDataRequest{Queries: qs})
	require.NoError(t, err)
	return resp.Responses
}

func fieldNames(f *data.Frame) []string {
	var out []string
	for _, fd := range f.Fields {
		out = append(out, fd.Name)
	}
	return out
}

func TestGapsFrame(t *testing.T) {
	api := newFakeAPI(t)
	api.gaps = []map[string]any{
		{"id": "g1", "tenant": "acme", "source": "firewall", "kind": "silence", "started_at": "2026-12-01T10:00:00Z",
			"detected_at": "2026-12-01T10:02:00Z", "ended_at": nil, "expected_events": 900, "observed_events": 0, "missing_events": 900},
		{"id": "g2", "tenant": "acme", "source": "edr", "kind": "drop", "started_at": "2026-12-01T08:00:00Z",
			"detected_at": "2026-12-01T08:10:00Z", "ended_at": "2026-12-01T09:00:00Z", "expected_events": 1000.4, "observed_events": 400, "missing_events": 600.6},
	}
	d := newTestDatasource(t, api.serve().URL, "", "")
	r := tr("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z")
	res := run(t, d, query("A", "gaps", map[string]any{"tenant": "acme", "state": "all"}, r, time.Minute),
		query("B", "gaps", map[string]any{"tenant": "nobody"}, r, time.Minute))

	a := res["A"]
	require.NoError(t, a.Error)
	require.Len(t, a.Frames, 1)
	f := a.Frames[0]
	require.Equal(t, "A", f.RefID)
	require.Equal(t, []string{"started_at", "detected_at", "ended_at", "tenant", "source", "kind", "expected_events", "missing_events", "id"}, fieldNames(f))
	require.Equal(t, 2, f.Rows())
	ended := f.Fields[2]
	require.Nil(t, ended.At(0), "ended_at is null while open")
	require.Equal(t, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), *ended.At(1).(*time.Time))
	require.Equal(t, int64(1000), f.Fields[6].At(1))
	require.Equal(t, int64(601), f.Fields[7].At(1))
	require.Equal(t, "g1", f.Fields[8].At(0))
	require.Contains(t, api.seen(), "/api/v1/gaps?from=2026-12-01T00%3A00%3A00Z&state=all&tenant=acme&to=2026-12-02T00%3A00%3A00Z")

	// No gaps: the frame is there, with its fields and no rows.
	b := res["B"]
	require.NoError(t, b.Error)
	require.Equal(t, 0, b.Frames[0].Rows())
	require.Len(t, b.Frames[0].Fields, 9)
}

// A listing longer than the API's page is read page by page; past
// maxGapPages pages the frame says it is cut.
func TestGapsPaging(t *testing.T) {
	api := newFakeAPI(t)
	api.pageSize = 2
	for i := range 2*maxGapPages + 3 {
		api.gaps = append(api.gaps, map[string]any{"id": strconv.Itoa(i), "tenant": "acme", "source": "edr", "kind": "silence",
			"started_at": "2026-12-01T10:00:00Z", "detected_at": "2026-12-01T10:02:00Z", "ended_at": nil,
			"expected_events": 1, "observed_events": 0, "missing_events": 1})
	}
	d := newTestDatasource(t, api.serve().URL, "", "")
	r := tr("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z")
	res := run(t, d, query("A", "gaps", map[string]any{"tenant": "acme"}, r, 0))
	require.NoError(t, res["A"].Error)
	f := res["A"].Frames[0]
	require.Equal(t, 2*maxGapPages, f.Rows())
	require.Equal(t, "19", f.Fields[8].At(19))
	require.Len(t, f.Meta.Notices, 1)
	require.Contains(t, f.Meta.Notices[0].Text, "more than 20 gaps")

	api.gaps = api.gaps[:5]
	res = run(t, d, query("A", "gaps", map[string]any{"tenant": "acme"}, r, 0))
	require.Equal(t, 5, res["A"].Frames[0].Rows())
	require.Empty(t, res["A"].Frames[0].Meta.Notices)
	require.Contains(t, api.seen(), "/api/v1/gaps?cursor=4&from=2026-12-01T00%3A00%3A00Z&tenant=acme&to=2026-12-02T00%3A00%3A00Z")
}

func TestCoverageFrame(t *testing.T) {
	api := newFakeAPI(t)
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	api.share = func(tenant, source string, ts time.Time) *float64 {
		switch {
		case source == "firewall" && ts.Sub(base) < 10*time.Minute:
			return nil // learning
		case source == "firewall" && ts.Sub(base) >= 30*time.Minute:
			v := 0.0 // a hole
			return &v
		}
		v := 0.97
		return &v
	}
	d := newTestDatasource(t, api.serve().URL, "", "")
	r := tr("2026-12-01T00:00:00Z", "2026-12-01T01:00:00Z")
	res := run(t, d,
		query("all", "coverage", nil, r, time.Minute),
		query("one", "coverage", map[string]any{"tenant": "acme", "source": "firewall"}, r, 2*time.Minute),
		query("empty", "coverage", map[string]any{"tenant": "initech"}, r, time.Minute),
	)

	all := res["all"]
	require.NoError(t, all.Error)
	f := all.Frames[0]
	require.Equal(t, []string{"time", "share", "share", "share"}, fieldNames(f))
	require.Equal(t, 60, f.Rows())
	var streams []string
	for _, fd := range f.Fields[1:] {
		streams = append(streams, fd.Labels["tenant"]+"/"+fd.Labels["source"])
	}
	require.Equal(t, []string{"acme/edr", "acme/firewall", "globex/dns"}, streams)
	fw := f.Fields[2]
	require.Nil(t, fw.At(0), "null while learning")
	require.Equal(t, 0.97, *fw.At(10).(*float64))
	require.Equal(t, 0.0, *fw.At(45).(*float64))
	require.Equal(t, base, f.Fields[0].At(0))

	one := res["one"]
	require.NoError(t, one.Error)
	require.Equal(t, 30, one.Frames[0].Rows())
	require.Len(t, one.Frames[0].Fields, 2)
	require.Equal(t, data.Labels{"tenant": "acme", "source": "firewall"}, one.Frames[0].Fields[1].Labels)

	// A tenant without judged streams: the time field alone.
	empty := res["empty"]
	require.NoError(t, empty.Error)
	require.Equal(t, []string{"time"}, fieldNames(empty.Frames[0]))
}

func TestCoverageLargeRangeStaysUnderTheCap(t *testing.T) {
	api := newFakeAPI(t)
	var many []string
	for i := range 100 {
		many = append(many, "src"+string(rune('a'+i/26))+string(rune('a'+i%26)))
	}
	api.tenants = map[string][]string{"big": many, "small": {"one"}}
	d := newTestDatasource(t, api.serve().URL, "", "")
	r := tr("2026-11-24T00:00:00Z", "2026-12-01T00:00:00Z")
	res := run(t, d, query("A", "coverage", nil, r, time.Minute))
	require.NoError(t, res["A"].Error)
	f := res["A"].Frames[0]
	require.Len(t, f.Fields, 102)
	require.LessOrEqual(t, f.Rows()*100, maxCoverageCells)
	for _, u := range api.seen() {
		if strings.HasPrefix(u, "/api/v1/coverage") {
			require.Contains(t, u, "step=6m0s", "one grid for every tenant, fitted to the largest")
		}
	}
}

func TestRatesFrames(t *testing.T) {
	api := newFakeAPI(t)
	d := newTestDatasource(t, api.serve().URL, "", "")
	r := tr("2026-12-01T00:00:00Z", "2026-12-01T00:10:00Z")
	res := run(t, d,
		query("one", "rates", map[string]any{"tenant": "acme", "source": "edr", "clock": "event"}, r, time.Minute),
		query("tenant", "rates", map[string]any{"tenant": "acme"}, r, time.Minute),
		query("long", "rates", map[string]any{"tenant": "acme", "source": "edr"}, tr("2026-01-01T00:00:00Z", "2026-12-01T00:00:00Z"), time.Minute),
	)
	one := res["one"]
	require.NoError(t, one.Error)
	require.Len(t, one.Frames, 1)
	f := one.Frames[0]
	require.Equal(t, []string{"time", "events", "expected", "lower", "upper"}, fieldNames(f))
	require.Equal(t, 10, f.Rows())
	require.Equal(t, 60.0, f.Fields[1].At(1))
	require.Equal(t, 60.0, *f.Fields[2].At(0).(*float64))
	require.Nil(t, f.Fields[2].At(1), "no band where there is no baseline")
	require.Equal(t, data.Labels{"tenant": "acme", "source": "edr"}, f.Fields[1].Labels)
	require.Contains(t, api.seen(), "/api/v1/rates?clock=event&from=2026-12-01T00%3A00%3A00Z&source=edr&step=1m0s&tenant=acme&to=2026-12-01T00%3A10%3A00Z")

	// No source: one frame per source of the tenant.
	tenant := res["tenant"]
	require.NoError(t, tenant.Error)
	var names []string
	for _, f := range tenant.Frames {
		names = append(names, f.Name)
	}
	require.Equal(t, []string{"acme/edr", "acme/firewall"}, names)

	// Eleven months at 1m are coarsened under the API's 11 000 points.
	long := res["long"]
	require.NoError(t, long.Error)
	require.LessOrEqual(t, long.Frames[0].Rows(), maxRatePoints)
	require.Greater(t, long.Frames[0].Rows(), maxRatePoints/2)
}

func TestExplainFrame(t *testing.T) {
	api := newFakeAPI(t)
	d := newTestDatasource(t, api.serve().URL, "", "")
	res := run(t, d,
		query("one", "explain", map[string]any{"tenant": "acme", "source": "edr"}, tr("2026-12-01T00:00:30Z", "2026-12-01T00:10:30Z"), time.Minute),
		// Past the watermark (07:00): held to it.
		query("late", "explain", map[string]any{"tenant": "acme", "source": "edr"}, tr("2026-12-05T06:50:00Z", "2026-12-05T08:00:00Z"), time.Minute),
		query("after", "explain", map[string]any{"tenant": "acme", "source": "edr"}, tr("2026-12-05T07:00:10Z", "2026-12-05T08:00:00Z"), time.Minute),
		query("nosource", "explain", map[string]any{"tenant": "acme"}, tr("2026-12-01T00:00:00Z", "2026-12-01T00:10:00Z"), time.Minute),
	)
	one := res["one"]
	require.NoError(t, one.Error)
	require.Len(t, one.Frames, 1)
	f := one.Frames[0]
	require.Equal(t, []string{"time", "observed", "expected", "judged", "state", "drop_share", "silence_share", "late_share",
		"drop50", "drop75", "rank", "drop_threshold", "silence_logp", "silence_threshold", "late", "late_threshold"}, fieldNames(f))
	require.Equal(t, 10, f.Rows(), "00:00 to 00:10 on the minute grid")
	require.Equal(t, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), f.Fields[0].At(0))
	require.Equal(t, 0.5, f.Fields[5].At(0), "drop share: the largest test's evidence (6.5) over 13")
	require.Equal(t, 0.0, f.Fields[6].At(0), "no silence run")
	require.Equal(t, 1.25, f.Fields[6].At(7), "silence share: −20 over −16")
	require.Equal(t, float64(underflowShare), f.Fields[6].At(8), "an underflowed run")
	require.Nil(t, f.Fields[12].At(8), "its log probability null")
	require.Equal(t, 0.25, f.Fields[7].At(0), "late share: 3.25 over 13")
	require.Equal(t, "gap", f.Fields[4].At(9))
	require.Equal(t, data.Labels{"tenant": "acme", "source": "edr"}, f.Fields[1].Labels)
	var notices []string
	for _, n := range f.Meta.Notices {
		notices = append(notices, n.Text)
	}
	require.Equal(t, []string{"replayed from 2026-11-30T23:00:00Z with the detector's settings (GET /api/v1/explain)",
		"silence opened: started 2026-12-01T00:07:00Z, detected 2026-12-01T00:08:00Z, 180 of 180 expected events missing"}, notices)
	require.Contains(t, api.seen(), "/api/v1/explain?from=2026-12-01T00%3A00%3A00Z&source=edr&tenant=acme&to=2026-12-01T00%3A10%3A00Z")

	require.NoError(t, res["late"].Error)
	require.Contains(t, api.seen(), "/api/v1/explain?from=2026-12-05T06%3A50%3A00Z&source=edr&tenant=acme&to=2026-12-05T07%3A00%3A00Z")
	require.Equal(t, 10, res["late"].Frames[0].Rows())

	require.ErrorContains(t, res["after"].Error, "before the ingest watermark")
	require.Equal(t, backend.StatusBadRequest, res["after"].Status)
	require.ErrorContains(t, res["nosource"].Error, "needs a tenant and a source")
	require.Equal(t, backend.StatusBadRequest, res["nosource"].Status)
}

func TestStreamsFrame(t *testing.T) {
	api := newFakeAPI(t)
	d := newTestDatasource(t, api.serve().URL, "", "")
	res := run(t, d, query("A", "streams", map[string]any{"tenant": "acme"}, tr("2026-12-01T00:00:00Z", "2026-12-01T01:00:00Z"), 0))
	require.NoError(t, res["A"].Error)
	f := res["A"].Frames[0]
	require.Equal(t, []string{"tenant", "source", "status", "last_seen", "events_per_min", "profile", "weekend"}, fieldNames(f))
	require.Equal(t, "learning", f.Fields[2].At(1))
	require.Nil(t, f.Fields[3].At(1))
	require.Equal(t, 300.5, f.Fields[4].At(0))
	require.Equal(t, []any{"weekly", "profile"}, []any{f.Fields[5].At(0), f.Fields[6].At(0)})
	require.Equal(t, []any{"short-term", "recent"}, []any{f.Fields[5].At(1), f.Fields[6].At(1)})
}

// Each query fails on its own, with the status and source of its error.
func TestPerQueryErrors(t *testing.T) {
	api := newFakeAPI(t)
	api.token = "right-token"
	good := newTestDatasource(t, api.serve().URL, "right-token", "")
	bad := newTestDatasource(t, api.serve().URL, "wrong-token", "")
	r := tr("2026-12-01T00:00:00Z", "2026-12-01T01:00:00Z")

	res := run(t, good,
		query("ok", "streams", nil, r, 0),
		query("type", "nonsense", nil, r, 0),
		query("state", "gaps", map[string]any{"state": "closed"}, r, 0),
		query("empty", "rates", map[string]any{"tenant": "acme", "source": "edr"}, tr("2026-12-01T01:00:00Z", "2026-12-01T01:00:00Z"), 0),
		query("orphan", "rates", map[string]any{"source": "edr"}, r, 0),
	)
	require.NoError(t, res["ok"].Error)
	for _, ref := range []string{"type", "state", "empty", "orphan"} {
		require.Error(t, res[ref].Error, ref)
		require.Equal(t, backend.StatusBadRequest, res[ref].Status, ref)
		require.Equal(t, backend.ErrorSourceDownstream, res[ref].ErrorSource, ref)
	}
	require.ErrorContains(t, res["type"].Error, `queryType "nonsense"`)

	res = run(t, bad, query("A", "gaps", nil, r, 0))
	require.Equal(t, backend.StatusUnauthorized, res["A"].Status)
	require.Equal(t, backend.ErrorSourceDownstream, res["A"].ErrorSource)
	require.ErrorContains(t, res["A"].Error, "refused the API token")

	// Nothing listens: a downstream error naming the address.
	gone := newTestDatasource(t, "http://127.0.0.1:1", "", "")
	res = run(t, gone, query("A", "streams", nil, r, 0))
	require.Equal(t, backend.ErrorSourceDownstream, res["A"].ErrorSource)
	require.ErrorContains(t, res["A"].Error, "cannot connect to gapwatch at http://127.0.0.1:1")

	// Settings that cannot work: every query says so.
	unset := newTestDatasource(t, "", "", "")
	res = run(t, unset, query("A", "streams", nil, r, 0))
	require.ErrorContains(t, res["A"].Error, "no URL")
}

func callResource(t *testing.T, d *Datasource, path string) (int, string) {
	t.Helper()
	var got *backend.CallResourceResponse
	u, _ := url.Parse(path)
	err := d.CallResource(context.Background(), &backend.CallResourceRequest{Method: http.MethodGet, Path: u.Path, URL: path},
		backend.CallResourceResponseSenderFunc(func(r *backend.CallResourceResponse) error { got = r; return nil }))
	require.NoError(t, err)
	require.NotNil(t, got)
	return got.Status, strings.TrimSpace(string(got.Body))
}

func TestResources(t *testing.T) {
	api := newFakeAPI(t)
	api.token = "right-token"
	srv := api.serve()
	d := newTestDatasource(t, srv.URL, "right-token", "")
	for _, tc := range []struct {
		path string
		code int
		body string
	}{
		{"tenants", 200, `["acme","globex","initech"]`},
		{"sources?tenant=acme", 200, `["edr","firewall"]`},
		{"sources?tenant=initech", 200, `[]`},
		{"sources?tenant=unknown", 200, `[]`},
		{"sources", 400, `{"error":"tenant is required: sources?tenant=T"}`},
		{"nothing", 404, `404 page not found`},
	} {
		code, body := callResource(t, d, tc.path)
		require.Equal(t, tc.code, code, tc.path)
		require.Equal(t, tc.body, body, tc.path)
	}
	bad := newTestDatasource(t, srv.URL, "wrong-token", "")
	code, body := callResource(t, bad, "tenants")
	require.Equal(t, 401, code)
	require.Contains(t, body, "refused the API token")
}

func TestCheckHealth(t *testing.T) {
	api := newFakeAPI(t)
	api.token = "right-token"
	srv := api.serve()
	notGapwatch := httptest404(t)

	for _, tc := range []struct {
		name   string
		url    string
		token  string
		status backend.HealthStatus
		msg    string
	}{
		{"ok", srv.URL, "right-token", backend.HealthStatusOk,
			"gapwatch v1.2.3 answers (roles ingest, detect, api); watermark 2026-12-05T07:00:00Z, 42s behind; 3 tenant(s) visible to this token"},
		{"bad token", srv.URL, "wrong-token", backend.HealthStatusError, "gapwatch refused the API token (HTTP 401)"},
		{"no token", srv.URL, "", backend.HealthStatusError, "gapwatch refused the API token (HTTP 401)"},
		{"nothing listens", "http://127.0.0.1:1", "", backend.HealthStatusError, "cannot connect to gapwatch at http://127.0.0.1:1"},
		{"unknown host", "http://no-such-host.invalid:8080", "", backend.HealthStatusError, "cannot resolve the host of http://no-such-host.invalid:8080"},
		{"not gapwatch", notGapwatch, "", backend.HealthStatusError, "no gapwatch API here (HTTP 404 for /api/v1/status)"},
		{"bad url", "ftp://gapwatch", "", backend.HealthStatusError, "want http:// or https://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDatasource(t, tc.url, tc.token, "")
			res, err := d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
			require.NoError(t, err, "a readable result, never a gRPC error")
			require.Equal(t, tc.status, res.Status, res.Message)
			require.Contains(t, res.Message, tc.msg)
		})
	}
}

func TestCheckHealthWatermarkUnknown(t *testing.T) {
	api := newFakeAPI(t)
	api.noWatermark = "no progress stored for logs/3"
	d := newTestDatasource(t, api.serve().URL, "", "")
	res, err := d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
	require.NoError(t, err)
	require.Equal(t, backend.HealthStatusOk, res.Status)
	require.Equal(t, "gapwatch v1.2.3 answers (roles api); watermark unknown: no progress stored for logs/3; 3 tenant(s) visible to this token", res.Message)
}

func httptest404(t *testing.T) string {
	s := httptestServer(t, http.NotFoundHandler())
	return s
}

// The token reaches the API as a bearer token and appears in no log line,
// error or result, whatever fails.
func TestTokenNeverLogged(t *testing.T) {
	const token = "tok-6f1d2c9e-never-print"
	logs := captureLogs(t)
	api := newFakeAPI(t)
	api.token = token
	srv := api.serve()
	r := tr("2026-12-01T00:00:00Z", "2026-12-01T01:00:00Z")
	var seen strings.Builder
	for _, u := range []string{srv.URL, "http://127.0.0.1:1", httptest404(t)} {
		for _, tok := range []string{token, token + "x"} {
			d := newTestDatasource(t, u, tok, "")
			h, err := d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
			require.NoError(t, err)
			seen.WriteString(h.Message)
			for _, qt := range QueryTypes {
				res := run(t, d, query("A", qt, nil, r, 0))
				if res["A"].Error != nil {
					seen.WriteString(res["A"].Error.Error())
				}
			}
			_, body := callResource(t, d, "tenants")
			seen.WriteString(body)
		}
	}
	require.Contains(t, logs.String(), "query failed", "the failures were logged")
	require.NotContains(t, logs.String(), "tok-6f1d2c9e")
	require.NotContains(t, seen.String(), "tok-6f1d2c9e")
}
