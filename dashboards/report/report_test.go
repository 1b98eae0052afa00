package report_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/dashboards/report"
	"github.com/gapwatch/gapwatch/dashboards/report/reporttest"
	"github.com/gapwatch/gapwatch/internal/servers"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create it")
	require.Equal(t, string(want), string(got), "%s differs (go test -update rewrites it)", path)
}

func query() report.Query {
	return report.Query{Tenant: reporttest.Tenant, From: reporttest.From, To: reporttest.To, Bucket: time.Minute}
}

// checkIncident builds the fixture's report from st and checks it against
// the golden files (the same for every store) and the hand-computed figures.
func checkIncident(t *testing.T, st report.Store) {
	r, err := report.Build(context.Background(), st, query())
	require.NoError(t, err)

	// By hand (reporttest.Write's doc): firewall expected 225 min × 10,
	// 40 min silent on time, of which 20 filled late.
	require.Len(t, r.Sources, 3)
	require.Equal(t, "dns", r.Sources[0].Source)
	require.Equal(t, reporttest.Evil, r.Sources[1].Source)
	fw := r.Sources[2]
	require.Equal(t, "firewall", fw.Source)
	require.Equal(t, report.Figures{Expected: 2250, Observed: 1850, FilledLate: 200, Received: 2050, Covered: 2050, Missing: 200,
		Share: ptr(0.9111), Holes: 2}, fw.Figures)
	require.Equal(t, report.Figures{Expected: 1125, Observed: 970, Received: 970, Covered: 970, Missing: 155, Share: ptr(0.8622), Holes: 2},
		r.Sources[0].Figures)
	var ids []string
	for _, h := range r.Holes {
		ids = append(ids, h.ID)
	}
	require.Equal(t, []string{"g-drop", "g-open", "g-planned", "g-across", "g-filled"}, ids, "by source, then start")
	filled := r.Holes[4]
	require.Equal(t, report.Hole{ID: "g-filled", Source: "firewall", Kind: "silence", StartedAt: "2026-11-20T10:10:00Z", EndedAt: ptr("2026-11-20T10:40:00Z"),
		Expected: 300, Received: 200, Missing: 100, FilledLate: 200}, filled)
	require.Nil(t, r.Holes[1].EndedAt, "open")
	require.True(t, r.Holes[2].Planned)

	for _, format := range report.Formats {
		var b bytes.Buffer
		require.NoError(t, r.Write(&b, format))
		golden(t, "incident."+format, b.Bytes())
		again, err := report.Build(context.Background(), st, query())
		require.NoError(t, err)
		var b2 bytes.Buffer
		require.NoError(t, again.Write(&b2, format))
		require.Equal(t, b.String(), b2.String(), "deterministic")
	}
}

func ptr[T any](v T) *T { return &v }

func TestIncidentMemory(t *testing.T) {
	st := memstore.New(0)
	reporttest.Write(t, st)
	checkIncident(t, st)
}

func TestIncidentClickHouse(t *testing.T) {
	st, _ := servers.ClickHouse(t)
	reporttest.Write(t, st)
	checkIncident(t, st)
}

func TestHTMLIsSelfContained(t *testing.T) {
	st := memstore.New(0)
	reporttest.Write(t, st)
	r, err := report.Build(context.Background(), st, query())
	require.NoError(t, err)
	var b bytes.Buffer
	require.NoError(t, r.WriteHTML(&b))
	html := b.String()
	for _, ref := range []string{"src=", "href=", "@import", "url(", "<script", "<link"} {
		require.NotContains(t, html, ref, "no external assets")
	}
	require.NotContains(t, html, "<b>&amp;</b>", "names are escaped")
	require.Contains(t, html, "@media print")
}

func TestEmpty(t *testing.T) {
	r, err := report.Build(context.Background(), memstore.New(0), query())
	require.NoError(t, err)
	var b bytes.Buffer
	require.NoError(t, r.WriteCSV(&b))
	require.Equal(t, strings.Join(report.CSVHeader, ",")+"\n", b.String())
	b.Reset()
	require.NoError(t, r.WriteJSON(&b))
	golden(t, "empty.json", b.Bytes())
	require.NoError(t, r.WriteHTML(&b))
}

func TestBadQueries(t *testing.T) {
	st := memstore.New(0)
	for name, q := range map[string]report.Query{
		"no tenant":      {From: reporttest.From, To: reporttest.To},
		"no from":        {Tenant: "a", To: reporttest.To},
		"empty":          {Tenant: "a", From: reporttest.To, To: reporttest.To},
		"backwards":      {Tenant: "a", From: reporttest.To, To: reporttest.From},
		"too long":       {Tenant: "a", From: reporttest.From, To: reporttest.From.Add(401 * 24 * time.Hour)},
		"not a bucket":   {Tenant: "a", From: reporttest.From.Add(time.Second), To: reporttest.To},
		"year 1":         {Tenant: "a", From: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), To: reporttest.To},
		"year 9999":      {Tenant: "a", From: reporttest.From, To: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)},
		"fraction":       {Tenant: "a", From: reporttest.From.Add(time.Millisecond), To: reporttest.To},
		"bucket of 1.5s": {Tenant: "a", From: reporttest.From, To: reporttest.To, Bucket: 1500 * time.Millisecond},
	} {
		_, err := report.Build(context.Background(), st, q)
		require.True(t, errors.Is(err, storage.ErrBadQuery), "%s: %v", name, err)
	}
}

// cellCounter answers coverage like a store that holds many sources: it
// refuses more than 10 steps a query.
type cellCounter struct {
	report.Store
	queries int
}

func (c *cellCounter) Coverage(ctx context.Context, q storage.CoverageQuery) ([]storage.SourceBand, error) {
	c.queries++
	if q.To.Sub(q.From)/q.Step > 10 {
		return nil, storage.ErrBadQuery
	}
	return c.Store.Coverage(ctx, q)
}

func TestChunksShrinkWhenRefused(t *testing.T) {
	st := memstore.New(0)
	reporttest.Write(t, st)
	want, err := report.Build(context.Background(), st, query())
	require.NoError(t, err)
	c := &cellCounter{Store: st}
	got, err := report.Build(context.Background(), c, query())
	require.NoError(t, err)
	require.Equal(t, want, got, "the same figures in smaller reads")
	require.Greater(t, c.queries, 5)
}

func TestGapsArePaged(t *testing.T) {
	st := memstore.New(0)
	n := storage.MaxGaps + 3
	alerts := make([]storage.Alert, n)
	for i := range alerts {
		started := reporttest.From.Add(time.Duration(i/2) * time.Second) // pairs start together: the cursor's id decides
		alerts[i] = storage.Alert{ID: fmt.Sprint("a", i), Type: "io.gapwatch.gap.opened", Time: started, GapID: fmt.Sprintf("g%05d", i),
			Tenant: "many", Source: "s", Kind: "silence", StartedAt: started, DetectedAt: started, Expected: 1, Missing: 1}
	}
	require.NoError(t, st.WriteAlerts(context.Background(), storage.AlertBatch{DetectProgress: storage.DetectProgress{Shards: 1, Seq: 1}, Alerts: alerts}))
	q := query()
	q.Tenant = "many"
	r, err := report.Build(context.Background(), st, q)
	require.NoError(t, err)
	require.Len(t, r.Holes, n, "every hole, past the store's page of %d", storage.MaxGaps)
	for i, h := range r.Holes {
		require.Equal(t, fmt.Sprintf("g%05d", i), h.ID)
	}
}
