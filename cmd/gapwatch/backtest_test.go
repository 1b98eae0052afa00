package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// --explain writes one CSV row per judged bucket of the named stream (a
// source with a comma in its name too), without changing the alerts; the
// silence's first bucket shows its run under the threshold.
func TestBacktestExplain(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "counts.csv")
	writeCounts(t, in)
	plain, explained := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	require.NoError(t, cmdBacktest(context.Background(), []string{"--input", in, "--out", plain}, &bytes.Buffer{}))
	for _, stream := range [][2]string{{"acme", "firewall"}, {"globex", "audit,log"}} {
		ex := filepath.Join(dir, stream[1]+".csv")
		var stdout bytes.Buffer
		require.NoError(t, cmdBacktest(context.Background(), []string{"--input", in, "--out", explained,
			"--explain", ex, "--explain-tenant", stream[0], "--explain-source", stream[1]}, &stdout))
		require.Contains(t, stdout.String(), "2880 judged buckets")
		a, err := os.ReadFile(plain)
		require.NoError(t, err)
		b, err := os.ReadFile(explained)
		require.NoError(t, err)
		require.Equal(t, string(a), string(b), "explaining changed the alerts")
		raw, err := os.ReadFile(ex)
		require.NoError(t, err)
		rows, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
		require.NoError(t, err)
		require.Equal(t, strings.TrimSpace(explainHeader), strings.Join(rows[0], ","))
		require.Len(t, rows, 1+2*1440, "a row per judged bucket")
		require.Equal(t, "2025-03-03T00:00:00Z", rows[1][0])
		require.Equal(t, "2025-03-04T23:59:00Z", rows[len(rows)-1][0])
		if stream[0] != "acme" {
			continue
		}
		opened := rows[1+1440+600] // 2025-03-04T10:00, the silence's first bucket
		require.Equal(t, "2025-03-04T10:00:00Z", opened[0])
		require.Equal(t, "0", opened[1])
		require.Equal(t, "gap", opened[5])
		logP, err := strconv.ParseFloat(opened[7], 64)
		require.NoError(t, err)
		threshold, err := strconv.ParseFloat(opened[8], 64)
		require.NoError(t, err)
		require.Less(t, logP, threshold, "%v", opened)
	}
	err := cmdBacktest(context.Background(), []string{"--input", in, "--out", explained,
		"--explain", filepath.Join(dir, "none.csv"), "--explain-tenant", "acme", "--explain-source", "nope"}, &bytes.Buffer{})
	require.ErrorAs(t, err, new(usageError))
	require.ErrorContains(t, err, `no stream with tenant "acme" and source "nope"`)
}

// A CSV as public data sets and pandas write it (NAB's space-separated UTC
// times, counts as 68.0, the columns in another order, Excel's BOM) gives the
// alerts of the same counts in the canonical form, byte for byte.
func TestBacktestNABStyleCSV(t *testing.T) {
	dir := t.TempDir()
	canonical, nab := filepath.Join(dir, "counts.csv"), filepath.Join(dir, "nab.csv")
	writeCounts(t, canonical)
	raw, err := os.ReadFile(canonical)
	require.NoError(t, err)
	rows, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	require.NoError(t, err)
	var b bytes.Buffer
	b.WriteString("\ufeff")
	w := csv.NewWriter(&b)
	require.NoError(t, w.Write([]string{"tenant", "source", "time", "count"}))
	for _, r := range rows[1:] {
		ts, err := time.Parse(time.RFC3339, r[0])
		require.NoError(t, err)
		require.NoError(t, w.Write([]string{r[1], r[2], ts.Format("2006-01-02 15:04:05"), r[3] + ".0"}))
	}
	w.Flush()
	require.NoError(t, w.Error())
	require.NoError(t, os.WriteFile(nab, b.Bytes(), 0o644))
	require.Contains(t, b.String(), "\nglobex,\"audit,log\",2025-03-03 00:00:00,")

	run := func(in, out string) []byte {
		require.NoError(t, cmdBacktest(context.Background(), []string{"--input", in, "--out", out}, io.Discard))
		got, err := os.ReadFile(out)
		require.NoError(t, err)
		return got
	}
	want := run(canonical, filepath.Join(dir, "canonical.jsonl"))
	require.Contains(t, string(want), `"started_at":"2025-03-04T10:00:00Z"`)
	require.Equal(t, string(want), string(run(nab, filepath.Join(dir, "nab.jsonl"))))
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
		{"--input", bad, "--out", filepath.Join(dir, "o"), "--explain", filepath.Join(dir, "e")},
		{"--input", bad, "--out", filepath.Join(dir, "o"), "--explain-tenant", "t", "--explain-source", "s"},
		{"--input", bad, "--out", filepath.Join(dir, "o"), "--explain", filepath.Join(dir, "o"), "--explain-tenant", "t", "--explain-source", "s"},
	} {
		err := cmdBacktest(context.Background(), args, &bytes.Buffer{})
		require.ErrorAs(t, err, new(usageError), "%q", args)
	}
}

// writeEvents writes the same traffic as raw events, as JSON lines, and as the
// equivalent counts CSV: two days of acme/firewall (Azure {"records":[...]}
// envelopes and plain events, silent for 30 minutes on the second day),
// globex/audit (plain events, epoch milliseconds) and a CloudTrail account
// ({"Records":[...]}), a few seconds out of order across buckets, plus lines
// that are rejected.
func writeEvents(t *testing.T, jsonl, csvPath string) {
	t.Helper()
	r := rand.New(rand.NewPCG(3, 4))
	var j, c bytes.Buffer
	c.WriteString("time,tenant,source,count\n")
	start := time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)
	at := func(m, k, n int) time.Time { // k-th of n events in minute m
		return start.Add(time.Duration(m)*time.Minute + time.Duration(k)*time.Minute/time.Duration(n))
	}
	var pendingLine string // one line held back: written a bucket later
	for m := range 2 * 1440 {
		ts := start.Add(time.Duration(m) * time.Minute).Format(time.RFC3339)
		if m < 1440+600 || m >= 1440+630 {
			n := 20 + r.IntN(10)
			fmt.Fprintf(&c, "%s,acme,firewall,%d\n", ts, n)
			j.WriteString(`{"records":[`)
			for k := range n - 2 {
				if k > 0 {
					j.WriteString(",")
				}
				fmt.Fprintf(&j, `{"time":"%s","resourceId":"/SUBSCRIPTIONS/x/providers/y","tenantId":"acme","category":"firewall","operationName":"Allow"}`,
					at(m, k, n).Format("2006-01-02T15:04:05.0000000Z"))
			}
			j.WriteString("]}\n")
			for k := n - 2; k < n; k++ {
				fmt.Fprintf(&j, `{"tenant":"acme","source":"firewall","time":"%s","msg":"plain"}`+"\n", at(m, k, n).Format(time.RFC3339Nano))
			}
		}
		n := 5 + r.IntN(5)
		fmt.Fprintf(&c, "%s,globex,\"audit,log\",%d\n", ts, n)
		for k := range n {
			line := fmt.Sprintf(`{"tenant_id":"globex","log_type":"audit,log","timestamp":%d}`+"\n", at(m, k, n).UnixMilli())
			if k == 0 && pendingLine == "" {
				pendingLine = line // delivered after the next minute's events
				continue
			}
			j.WriteString(line)
		}
		if m%2 == 1 {
			j.WriteString(pendingLine)
			pendingLine = ""
		}
		n = 1 + r.IntN(3)
		fmt.Fprintf(&c, "%s,123456789012,aws.cloudtrail,%d\n", ts, n)
		j.WriteString(`{"Records":[`)
		for k := range n {
			if k > 0 {
				j.WriteString(",")
			}
			fmt.Fprintf(&j, `{"eventTime":"%s","recipientAccountId":"123456789012","eventName":"GetObject"}`, at(m, k, n).Format(time.RFC3339))
		}
		j.WriteString("]}\n")
		if m%500 == 0 {
			j.WriteString(`{"tenant":"acme","source":"firewall"}` + "\n") // no time
			j.WriteString("{not json\n\n")
		}
	}
	j.WriteString(pendingLine)
	require.NoError(t, os.WriteFile(jsonl, j.Bytes(), 0o644))
	require.NoError(t, os.WriteFile(csvPath, c.Bytes(), 0o644))
}

func TestBacktestJSONLinesEqualsCSV(t *testing.T) {
	dir := t.TempDir()
	in, csvIn := filepath.Join(dir, "events.jsonl"), filepath.Join(dir, "counts.csv")
	writeEvents(t, in, csvIn)
	run := func(input, out string, extra ...string) ([]byte, string) {
		var stdout bytes.Buffer
		args := append([]string{"--input", input, "--out", out}, extra...)
		require.NoError(t, cmdBacktest(context.Background(), args, &stdout))
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		return b, stdout.String()
	}
	want, _ := run(csvIn, filepath.Join(dir, "csv.out"))
	require.Contains(t, string(want), `"type":"io.gapwatch.gap.opened"`)
	require.Contains(t, string(want), `"started_at":"2025-03-04T10:00:00Z"`)
	got, summary := run(in, filepath.Join(dir, "jsonl.out"))
	require.Equal(t, string(want), string(got), "JSON lines give the alerts of the equivalent counts")
	require.Contains(t, summary, "invalid_json=6 missing_time=6")
	require.Contains(t, summary, "0 events in 0 lines older than --allowed-lateness 10m0s dropped")
	require.Equal(t, 1, strings.Count(summary, "\n"), "one line: %s", summary)
	forced, _ := run(in, filepath.Join(dir, "forced.out"), "--format", "jsonl", "--step", "1m")
	require.Equal(t, string(want), string(forced))

	// With no lateness allowed, the held-back lines are too late: dropped and counted.
	_, summary = run(in, filepath.Join(dir, "strict.out"), "--allowed-lateness", "0s")
	require.Regexp(t, `[1-9]\d* events in [1-9]\d* lines older than --allowed-lateness 0s dropped`, summary)
}

func TestBacktestBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(s), 0o644))
		return p
	}
	unordered := write("unordered.csv", "time,tenant,source,count\n2025-03-03T00:00:00Z,a,b,1\n2025-03-03T00:02:00Z,a,b,1\n2025-03-03T00:01:00Z,a,b,1\n")
	nothing := write("nothing.jsonl", "{\"tenant\":\"a\"}\n{bad\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--input", unordered, "--out", filepath.Join(dir, "o")}, "line 4: time 2025-03-03T00:01:00Z is before 2025-03-03T00:02:00Z on line 3"},
		{[]string{"--input", unordered, "--out", filepath.Join(dir, "o"), "--step", "1m"}, "sort -t, -k1,1"},
		{[]string{"--input", nothing, "--out", filepath.Join(dir, "o")}, "no usable event in 2 lines (2 rejected: invalid_json=1 missing_source=1)"},
		{[]string{"--input", unordered, "--out", filepath.Join(dir, "o"), "--format", "jsonl"}, "no usable event"},
		{[]string{"--input", nothing, "--out", filepath.Join(dir, "o"), "--format", "xml"}, "--format must be csv or jsonl"},
	} {
		err := cmdBacktest(context.Background(), tc.args, &bytes.Buffer{})
		require.ErrorAs(t, err, new(usageError), "%q", tc.args)
		require.ErrorContains(t, err, tc.want)
	}
}

// A gzip-compressed input is read as the plain one (the file, or stdin); a
// gzip stream that breaks off is an input error, not alerts cut short.
func TestBacktestGzipInput(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "counts.csv")
	writeCounts(t, plain)
	raw, err := os.ReadFile(plain)
	require.NoError(t, err)
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, err = zw.Write(raw)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	gz := filepath.Join(dir, "counts.csv.gz")
	require.NoError(t, os.WriteFile(gz, z.Bytes(), 0o644))

	run := func(in, out string) ([]byte, error) {
		err := cmdBacktest(context.Background(), []string{"--input", in, "--out", out}, io.Discard)
		b, _ := os.ReadFile(out)
		return b, err
	}
	want, err := run(plain, filepath.Join(dir, "plain.jsonl"))
	require.NoError(t, err)
	got, err := run(gz, filepath.Join(dir, "gz.jsonl"))
	require.NoError(t, err)
	require.Contains(t, string(want), `"type":"io.gapwatch.gap.opened"`)
	require.Equal(t, string(want), string(got))

	cut := filepath.Join(dir, "cut.csv.gz")
	require.NoError(t, os.WriteFile(cut, z.Bytes()[:z.Len()/2], 0o644))
	_, err = run(cut, filepath.Join(dir, "cut.jsonl"))
	require.Error(t, err)
}
