package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
)

// result is one timed consumption of the whole topic.
type result struct {
	seconds    float64
	cpuSeconds float64 // user + system of the consumer process
	rssPeakMB  float64 // gapwatch only
	firstWrite float64 // gapwatch only: seconds from start to the first stored progress
	load       load    // what the machine did meanwhile
	rows       uint64  // gapwatch only: count rows stored
	rollup     rollupCost
}

// rollupCost is what rolling up the run's stored counts into the hourly
// rollup took afterwards: work the insert path no longer does, done once per
// write day (chstore.Store.Rollup).
type rollupCost struct {
	seconds, chCPU float64
}

func printTable(out io.Writer, o options, w *workload, msgs int64, refName string, kcats, gws []result, prof *result) {
	mb := float64(w.bytes) / 1e6
	line := func(name string, rs []result, rss bool) float64 {
		secs := median(rs, func(r result) float64 { return r.seconds })
		cpu := median(rs, func(r result) float64 { return r.cpuSeconds })
		rssCol := ""
		if rss {
			rssCol = fmt.Sprintf("%6.0f MB", slices.MaxFunc(rs, func(a, b result) int { return cmp.Compare(a.rssPeakMB, b.rssPeakMB) }).rssPeakMB)
		}
		fmt.Fprintf(out, "%-27s %12.0f %12.0f %8.1f %8.2f %10.1f   %s\n", name, float64(w.events)/secs, float64(msgs)/secs, mb/secs, secs, cpu, rssCol)
		return float64(w.events) / secs
	}
	fmt.Fprintf(out, "\n%-27s %12s %12s %8s %8s %10s   %s\n", fmt.Sprintf("median of %d", len(gws)), "events/s", "messages/s", "MB/s", "wall s", "CPU s", "peak RSS")
	ref := line(refName, kcats, false)
	gw := line("gapwatch ingest", gws, true)
	if prof != nil {
		fmt.Fprintf(out, "%-27s %12.0f %12.0f %8.1f %8.2f %10s   (in-process, CPU profile in %s)\n", "gapwatch ingest, profiled", float64(w.events)/prof.seconds, float64(msgs)/prof.seconds, mb/prof.seconds, prof.seconds, "", o.cpuprofile)
	}
	ratio := gw / ref
	peak := slices.MaxFunc(gws, func(a, b result) int { return cmp.Compare(a.rssPeakMB, b.rssPeakMB) }).rssPeakMB
	fmt.Fprintf(out, "ratio gapwatch/%s: %.2f (target ≥ %.1f: %s)   RSS target ≤ %d MB with %d streams: %s\n",
		strings.Fields(refName)[0], ratio, targetRatio, okNot(ratio >= targetRatio), targetRSSMB, w.streams, okNot(peak <= targetRSSMB))
	fmt.Fprintf(out, "exact: stored events == produced events (%d, both clocks), %d streams stored, every run: ok\n", w.events, w.streams)
	fmt.Fprintf(out, "hourly rollup of a run's counts, once their write day is over (not in the figures above): %.2f s, ClickHouse %.2f core-s (median)\n",
		median(gws, func(r result) float64 { return r.rollup.seconds }), median(gws, func(r result) float64 { return r.rollup.chCPU }))
	fmt.Fprintf(out, "\nper run (CPU in core-seconds during the run; \"other\" is the rest of the machine: this harness and anything else running)\n")
	fmt.Fprintf(out, "%-4s %-12s %7s %8s %9s %9s %8s %7s %10s %10s\n", "run", "consumer", "wall s", "CPU s", "broker s", "CH s", "other s", "RSS MB", "1st write", "rows")
	ref0 := strings.Fields(refName)[0]
	for i := range gws {
		k, g := kcats[i], gws[i]
		fmt.Fprintf(out, "%-4d %-12s %7.2f %8.2f %9.2f %9.2f %8.2f%s\n", i+1, ref0, k.seconds, k.cpuSeconds, k.load.kafka, k.load.clickhouse, k.load.other, contended(k))
		fmt.Fprintf(out, "%-4d %-12s %7.2f %8.2f %9.2f %9.2f %8.2f %7.0f %9.2fs %10d%s\n", i+1, "gapwatch", g.seconds, g.cpuSeconds, g.load.kafka, g.load.clickhouse, g.load.other, g.rssPeakMB, g.firstWrite, g.rows, contended(g))
	}
	if prof != nil {
		fmt.Fprintf(out, "%-4s %-12s %7.2f %8.2f %9.2f %9.2f %8.2f %7s %10s %10d   in-process; its CPU s includes the harness\n", "prof", "gapwatch", prof.seconds, prof.cpuSeconds, prof.load.kafka, prof.load.clickhouse, prof.load.other, "", "", prof.rows)
	}
}

func okNot(ok bool) string {
	if ok {
		return "ok"
	}
	return "NOT MET"
}

// median of f over rs; the mean of the middle two for an even count.
func median(rs []result, f func(result) float64) float64 {
	if len(rs) == 0 {
		return 0
	}
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// ---------------------------------------------------------------------------
// traffic
