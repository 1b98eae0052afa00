package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/dashboards/api"
	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/internal/servers"
	"github.com/gapwatch/gapwatch/simulate"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// explainStart is the first minute of the explained stream's counts; it
// falls silent on its sixteenth day from 10:00 to 12:00.
var explainStart = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// explainCounts returns sixteen days of per-minute counts of acme/fw (a
// daily rhythm, gamma-Poisson noise) up to 13:00 of the last day, silent
// from 10:00 to 12:00 of it, and of acme/dns beside it.
func explainCounts() []storage.Count {
	r := rand.New(rand.NewPCG(7, 8))
	silent := explainStart.Add(15*24*time.Hour + 10*time.Hour)
	end := explainStart.Add(15*24*time.Hour + 13*time.Hour)
	var out []storage.Count
	for at := explainStart; at.Before(end); at = at.Add(time.Minute) {
		h := float64(at.Hour()) + float64(at.Minute())/60
		rate := 20 + 12*math.Sin(2*math.Pi*(h-8)/24)
		if at.Before(silent) || !at.Before(silent.Add(2*time.Hour)) {
			if n := simulate.GammaPoisson(r, rate, 0.02); n > 0 {
				out = append(out, storage.Count{Tenant: "acme", Source: "fw", Clock: storage.Arrival, Bucket: at.Unix(), Events: n})
			}
		}
		out = append(out, storage.Count{Tenant: "acme", Source: "dns", Clock: storage.Arrival, Bucket: at.Unix(), Events: 3})
	}
	return out
}

// gapwatch explain replays a stream's stored counts: the judged buckets of
// its period are, byte for byte, what backtest --explain writes for the same
// counts (here the replay reaches back to the stream's first count), and the
// silence is found at its start with its run's log probability under the
// threshold; with the default history the replay starts 15 days back.
func TestExplainFromClickHouse(t *testing.T) {
	t.Chdir(t.TempDir())
	st, cfg := servers.ClickHouse(t)
	counts := explainCounts()
	ctx := context.Background()
	for i := 0; i < len(counts); i += 10000 {
		require.NoError(t, st.Write(ctx, storage.Batch{Counts: counts[i:min(i+10000, len(counts))]}))
	}
	t.Setenv("GAPWATCH_STORE", "clickhouse")
	t.Setenv("GAPWATCH_CLICKHOUSE_ADDR", cfg.Addr)
	t.Setenv("GAPWATCH_CLICKHOUSE_DATABASE", cfg.Database)
	day := explainStart.Add(15 * 24 * time.Hour)
	from, to := day.Add(9*time.Hour), day.Add(13*time.Hour)
	args := []string{"explain", "--tenant", "acme", "--source", "fw", "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339)}

	// Summaries go to stderr when the CSV goes to stdout, else to stdout.
	file := filepath.Join(t.TempDir(), "why.csv")
	code, out, stderr := runCmd(append(args, "--history", "480h", "--out", file)...)
	require.Equal(t, 0, code, stderr)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	rows := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	require.Equal(t, strings.TrimSuffix(explainHeader, "\n"), rows[0])
	require.Len(t, rows, 1+4*60, "a row per minute of the period, the silent ones too")
	require.True(t, strings.HasPrefix(rows[1], from.Format(time.RFC3339)+","), rows[1])
	require.Contains(t, out, fmt.Sprintf("explain: 240 judged buckets of \"acme\"/\"fw\" from %s to %s (replayed from its first count, at %s)\n",
		from.Format(time.RFC3339), to.Format(time.RFC3339), explainStart.Format(time.RFC3339)))
	silence := day.Add(10 * time.Hour).Format(time.RFC3339)
	require.Contains(t, out, "explain: silence opened: started "+silence)
	opened := false
	for _, r := range rows[1:] {
		f := strings.Split(r, ",")
		if f[0] == silence {
			require.Equal(t, "gap", f[5], r)
			opened = true
		}
	}
	require.True(t, opened)

	// The same counts as a backtest's input: the same rows.
	require.Equal(t, backtestRows(t, counts, from), rows[1:])

	// The default history (detect.history, 360 h); the CSV on stdout.
	code, out, stderr = runCmd(args...)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, 1+240, strings.Count(out, "\n"))
	require.True(t, strings.HasPrefix(out, explainHeader))

	// A period ending inside the silence: its empty buckets are judged too;
	// the default history's replay starts 15 days back.
	code, out, stderr = runCmd("explain", "--tenant", "acme", "--source", "fw", "--from", from.Format(time.RFC3339),
		"--to", day.Add(11*time.Hour).Format(time.RFC3339), "--out", file)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, fmt.Sprintf("explain: 120 judged buckets of \"acme\"/\"fw\" from %s to %s (replayed from its first count, at %s)\n",
		from.Format(time.RFC3339), day.Add(11*time.Hour).Format(time.RFC3339), from.Add(-360*time.Hour).Format(time.RFC3339)))
	require.Contains(t, out, "explain: silence opened: started "+silence)

	// A stream without counts is bad usage.
	code, _, stderr = runCmd("explain", "--tenant", "acme", "--source", "nope", "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339))
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, `no counts of tenant "acme" and source "nope"`)

	// With input progress stored, a period past the ingest watermark is bad
	// usage: its counts may not be stored yet.
	t.Setenv("GAPWATCH_INPUT_TOPICS", "explain_logs")
	require.NoError(t, st.Write(ctx, storage.Batch{Offsets: []storage.Offset{
		{Topic: "explain_logs", Partition: 0, Next: 10, ArrivalHW: day.Add(12*time.Hour + 30*time.Minute)},
		{Topic: "explain_logs", Partition: 1, Next: 10, ArrivalHW: to}}}))
	code, _, stderr = runCmd(args...)
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, "is after the ingest watermark "+day.Add(12*time.Hour+30*time.Minute).Format(time.RFC3339))
	code, _, stderr = runCmd("explain", "--tenant", "acme", "--source", "fw", "--from", from.Format(time.RFC3339),
		"--to", day.Add(12*time.Hour+30*time.Minute).Format(time.RFC3339), "--out", file)
	require.Equal(t, 0, code, stderr)
}

func TestExplainBadUsage(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("GAPWATCH_STORE", "clickhouse")
	for _, args := range [][]string{
		{"explain"},
		{"explain", "--source", "fw", "--from", "2026-11-20", "--to", "2026-11-21"},
		{"explain", "--tenant", "a", "--from", "2026-11-20", "--to", "2026-11-21"},
		{"explain", "--tenant", "a", "--source", "fw", "--to", "2026-11-21"},
		{"explain", "--tenant", "a", "--source", "fw", "--from", "2026-11-21", "--to", "2026-11-20"},
		{"explain", "--tenant", "a", "--source", "fw", "--from", "2026-11-20T10:00:30Z", "--to", "2026-11-21"},
		{"explain", "--tenant", "a", "--source", "fw", "--from", "2026-10-01", "--to", "2026-11-21"},
		{"explain", "--tenant", "a", "--source", "fw", "--from", "2026-11-20", "--to", "2026-11-21", "--history", "-1h"},
		{"explain", "--tenant", "a", "--source", "fw", "--from", "2026-11-20", "--to", "2026-11-21", "--history", "40000h"},
		{"explain", "--tenant", "a", "--source", "fw", "--from", "2026-11-20", "--to", "2026-11-21", "extra"},
	} {
		code, out, stderr := runCmd(args...)
		require.Equal(t, 2, code, "%v: %s", args, stderr)
		require.Empty(t, out, "%v", args)
		require.Equal(t, 1, strings.Count(stderr, "\n"), "%v: one-line reason, got %q", args, stderr)
	}
	t.Setenv("GAPWATCH_STORE", "memory")
	code, _, stderr := runCmd("explain", "--tenant", "a", "--source", "fw", "--from", "2026-11-20", "--to", "2026-11-21")
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, "use --api")
}

// backtestRows returns the rows of backtest --explain over acme/fw's counts
// from bucket from on.
func backtestRows(t *testing.T, counts []storage.Count, from time.Time) []string {
	t.Helper()
	var csv bytes.Buffer
	csv.WriteString("time,tenant,source,count\n")
	for _, c := range counts {
		if c.Source == "fw" {
			fmt.Fprintf(&csv, "%s,acme,fw,%d\n", time.Unix(c.Bucket, 0).UTC().Format(time.RFC3339), c.Events)
		}
	}
	in, why := filepath.Join(t.TempDir(), "in.csv"), filepath.Join(t.TempDir(), "why.csv")
	require.NoError(t, os.WriteFile(in, csv.Bytes(), 0o644))
	code, _, stderr := runCmd("backtest", "--input", in, "--out", filepath.Join(t.TempDir(), "alerts.jsonl"), "--step", "1m",
		"--explain", why, "--explain-tenant", "acme", "--explain-source", "fw")
	require.Equal(t, 0, code, stderr)
	b, err := os.ReadFile(why)
	require.NoError(t, err)
	var want []string
	for _, r := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")[1:] {
		if ts, _ := time.Parse(time.RFC3339, strings.SplitN(r, ",", 2)[0]); !ts.Before(from) {
			want = append(want, r)
		}
	}
	return want
}

// Through a running API (the memory store here, as in the demo): the same
// rows as backtest --explain, the JSON's floats read back exactly; the token
// sent; --history refused (the API replays with its own).
func TestExplainThroughAPI(t *testing.T) {
	t.Chdir(t.TempDir())
	st := memstore.New(20 * 24 * time.Hour)
	counts := explainCounts()
	require.NoError(t, st.Write(context.Background(), storage.Batch{Counts: counts}))
	cfg := api.Config{Bucket: time.Minute, Explain: api.ExplainConfig{Engine: detect.Config{Bucket: time.Minute}, History: 480 * time.Hour}}
	h := api.New(cfg, api.Deps{Rates: st, Counts: st}).Handler()
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("GAPWATCH_API_TOKEN", "s3cret")
	day := explainStart.Add(15 * 24 * time.Hour)
	from, to := day.Add(9*time.Hour), day.Add(13*time.Hour)
	file := filepath.Join(t.TempDir(), "why.csv")
	args := []string{"explain", "--api", srv.URL, "--tenant", "acme", "--source", "fw", "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339)}
	code, out, stderr := runCmd(append(args, "--out", file)...)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "Bearer s3cret", auth)
	require.Contains(t, out, fmt.Sprintf("(replayed from its first count, at %s)\n", explainStart.Format(time.RFC3339)))
	require.Contains(t, out, "explain: silence opened: started "+day.Add(10*time.Hour).Format(time.RFC3339))
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	rows := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	require.Equal(t, strings.TrimSuffix(explainHeader, "\n"), rows[0])
	require.Equal(t, backtestRows(t, counts, from), rows[1:])

	code, _, stderr = runCmd(append(args, "--history", "1h")...)
	require.Equal(t, 2, code, stderr)
	code, _, stderr = runCmd("explain", "--api", srv.URL, "--tenant", "acme", "--source", "nope", "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339))
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, "404 Not Found")
}
