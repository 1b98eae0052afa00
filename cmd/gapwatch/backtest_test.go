package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/detect"
)

// writeCounts writes two days of two streams at 1-minute buckets; firewall
// goes silent for 30 minutes on the second day.
func writeCounts(t *testing.T, path string) {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	b.WriteString("time,tenant,source,count\n")
	start := time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)
	for i := range 2 * 1440 {
		ts := start.Add(time.Duration(i) * time.Minute).Format(time.RFC3339)
		if i < 1440+600 || i >= 1440+630 {
			fmt.Fprintf(&b, "%s,acme,firewall,%d\n", ts, 80+r.IntN(40))
		}
		fmt.Fprintf(&b, "%s,globex,\"audit,log\",%d\n", ts, 5+r.IntN(5))
	}
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
}

func TestBacktestCommand(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "counts.csv")
	writeCounts(t, in)
	run := func(out string, extra ...string) []byte {
		var stdout bytes.Buffer
		args := append([]string{"--input", in, "--out", out}, extra...)
		require.NoError(t, cmdBacktest(context.Background(), args, &stdout))
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		return b
	}
	a := run(filepath.Join(dir, "a.jsonl"))
	b := run(filepath.Join(dir, "b.jsonl"), "--step", "1m")
	require.Equal(t, string(a), string(b), "two runs give the same bytes")
	require.Contains(t, string(a), `"type":"io.gapwatch.gap.opened"`)
	require.Contains(t, string(a), `"type":"io.gapwatch.gap.resolved"`)
	require.Contains(t, string(a), `"started_at":"2025-03-04T10:00:00Z"`)
	require.Contains(t, string(a), `"ended_at":"2025-03-04T10:30:00Z"`)
	require.NotContains(t, string(a), "globex", "the healthy stream has no gap")

	// The same as the engine's own events for the same counts.
	f, err := os.Open(in)
	require.NoError(t, err)
	defer f.Close()
	counts, err := detect.ReadCountsCSV(f)
	require.NoError(t, err)
	var want []byte
	require.NoError(t, detect.Backtest(counts, detect.Config{}, func(ev detect.Event) error { want = ev.AppendLine(want); return nil }))
	require.Equal(t, string(want), string(a))
}

func TestBacktestUsage(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte("when,who\n1,2\n"), 0o644))
	for _, args := range [][]string{
		{},
		{"--input", "x.csv"},
		{"--input", filepath.Join(dir, "missing.csv"), "--out", filepath.Join(dir, "o")},
		{"--input", bad, "--out", filepath.Join(dir, "o")},
		{"--input", bad, "--out", filepath.Join(dir, "o"), "--step", "-1m"},
		{"--nope"},
	} {
		err := cmdBacktest(context.Background(), args, &bytes.Buffer{})
		require.ErrorAs(t, err, new(usageError), "%q", args)
	}
}
