package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/dashboards/api"
	"github.com/gapwatch/gapwatch/dashboards/report/reporttest"
	"github.com/gapwatch/gapwatch/internal/servers"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// reportArgs asks for the report of reporttest's incident.
func reportArgs(format string, extra ...string) []string {
	return append([]string{"report", "--tenant", reporttest.Tenant, "--from", reporttest.From.Format(time.RFC3339),
		"--to", reporttest.To.Format(time.RFC3339), "--format", format}, extra...)
}

// reportGolden is the report package's golden files (absolute: tests chdir).
var reportGolden, _ = filepath.Abs(filepath.Join("..", "..", "dashboards", "report", "testdata"))

// wantReport is the report package's golden file: every path gives the same bytes.
func wantReport(t *testing.T, format string) string {
	b, err := os.ReadFile(filepath.Join(reportGolden, "incident."+format))
	require.NoError(t, err)
	return string(b)
}

func TestReportThroughAPI(t *testing.T) {
	t.Chdir(t.TempDir())
	st := memstore.New(0)
	reporttest.Write(t, st)
	var auth string
	h := api.New(api.Config{Bucket: time.Minute}, api.Deps{Rates: st, Gaps: st, Expectations: st}).Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("GAPWATCH_API_TOKEN", "s3cret")
	for _, format := range []string{"csv", "json", "html"} {
		code, out, stderr := runCmd(reportArgs(format, "--api", srv.URL+"/")...)
		require.Equal(t, 0, code, stderr)
		require.Equal(t, wantReport(t, format), out, format)
	}
	require.Equal(t, "Bearer s3cret", auth)

	// The server's refusal is bad usage; an unreachable API a failure.
	code, _, stderr := runCmd("report", "--tenant", "acme", "--from", "2026-11-20", "--to", "2026-11-21", "--api", srv.URL, "--format", "json")
	require.Equal(t, 0, code, stderr)
	srv.Close()
	code, _, stderr = runCmd(reportArgs("csv", "--api", srv.URL)...)
	require.Equal(t, 1, code, stderr)
	require.Equal(t, 1, strings.Count(stderr, "\n"), stderr)
}

func TestReportFromClickHouse(t *testing.T) {
	t.Chdir(t.TempDir())
	st, cfg := servers.ClickHouse(t)
	reporttest.Write(t, st)
	t.Setenv("GAPWATCH_STORE", "clickhouse")
	t.Setenv("GAPWATCH_CLICKHOUSE_ADDR", cfg.Addr)
	t.Setenv("GAPWATCH_CLICKHOUSE_DATABASE", cfg.Database)
	for _, format := range []string{"csv", "json", "html"} {
		code, out, stderr := runCmd(reportArgs(format)...)
		require.Equal(t, 0, code, stderr)
		require.Equal(t, wantReport(t, format), out, format)
	}
}

func TestReportBadUsage(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("GAPWATCH_STORE", "")
	for _, args := range [][]string{
		{"report"},
		{"report", "--from", "2026-11-20", "--to", "2026-11-21"},
		{"report", "--tenant", "a", "--to", "2026-11-21"},
		{"report", "--tenant", "a", "--from", "yesterday", "--to", "2026-11-21"},
		{"report", "--tenant", "a", "--from", "2026-11-21", "--to", "2026-11-20"},
		{"report", "--tenant", "a", "--from", "2026-11-20T10:00:30Z", "--to", "2026-11-21"},
		{"report", "--tenant", "a", "--from", "0001-01-01", "--to", "2026-11-21"},
		{"report", "--tenant", "a", "--from", "2020-01-01", "--to", "2026-11-21"},
		{"report", "--tenant", "a", "--from", "2026-11-20", "--to", "2026-11-21", "--format", "pdf"},
		{"report", "--tenant", "a", "--from", "2026-11-20", "--to", "2026-11-21", "--api", "ftp://x"},
		{"report", "--tenant", "a", "--from", "2026-11-20", "--to", "2026-11-21", "extra"},
		{"report", "--tenant", "a", "--from", "2026-11-20", "--to", "2026-11-21", "--bogus"},
	} {
		code, out, stderr := runCmd(args...)
		require.Equal(t, 2, code, "%v: %s", args, stderr)
		require.Empty(t, out, "%v", args)
		require.Equal(t, 1, strings.Count(stderr, "\n"), "%v: one-line reason, got %q", args, stderr)
	}
	t.Setenv("GAPWATCH_STORE", "memory")
	code, _, stderr := runCmd("report", "--tenant", "a", "--from", "2026-11-20", "--to", "2026-11-21")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "--api")
}
