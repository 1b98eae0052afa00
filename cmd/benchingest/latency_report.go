package main

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// The -latency mode's figures: per run and over the runs.

// stats returns the median, the p90 (nearest rank) and the max of xs.
func stats(xs []float64) (p50, p90, mx float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	s := slices.Sorted(slices.Values(xs))
	rank := func(q float64) float64 { return s[max(0, int(math.Ceil(q*float64(len(s))))-1)] }
	return medianOf(s), rank(0.9), s[len(s)-1]
}

func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(xs))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// measured returns f of every stopped stream with a last event and a value.
func (r latResult) measured(f func(latStop) (float64, bool)) []float64 {
	var out []float64
	for _, s := range r.stops {
		if s.last.IsZero() {
			continue
		}
		if v, ok := f(s); ok {
			out = append(out, v)
		}
	}
	return out
}

func (r latResult) latencies() []float64 {
	return r.measured(func(s latStop) (float64, bool) { return s.latency().Seconds(), !s.opened.IsZero() })
}

func (r latResult) deliveries() []float64 {
	return r.measured(func(s latStop) (float64, bool) {
		return s.delivery().Seconds(), !s.opened.IsZero() && !s.detect.IsZero()
	})
}

func (r latResult) floors() []float64 {
	return r.measured(func(s latStop) (float64, bool) { return s.floorAfter().Seconds(), !s.floor.IsZero() })
}

func (r latResult) statics(d, width time.Duration) []float64 {
	return r.measured(func(s latStop) (float64, bool) { return s.static(d, width).Seconds(), true })
}

func printLatencyRun(run int, o options, r latResult) {
	width := o.lat.bucket
	fmt.Printf("\nrun %d (%.0f s; ClickHouse %s; load average %s): %d count rows stored ahead in %.1f s; detector ready %.1f s after its start (replay of %s, %.1f core-s)\n",
		run, r.secs, r.chVersion, r.loadAvg, r.seededRows, r.seedSecs, r.readySecs, o.lat.history, r.warmCPU)
	fmt.Printf("  %-12s %10s %14s %17s %8s %20s %22s\n", "stream", "stop phase", "last event", "gap.opened after", "kind", "detected_at + …", "watermark past bucket")
	for _, s := range r.stops {
		last, opened, floor, detected := "none", "NONE", "-", "-"
		if !s.last.IsZero() {
			last = s.last.UTC().Format("15:04:05.000")
		}
		if !s.opened.IsZero() && !s.last.IsZero() {
			opened = fmt.Sprintf("%.1f s", s.latency().Seconds())
		}
		if !s.opened.IsZero() && !s.detect.IsZero() {
			in := s.detect.Sub(s.detect.Truncate(width)).Seconds()
			detected = fmt.Sprintf("%2.0f s in + %.1f s", in, s.delivery().Seconds())
		}
		if !s.floor.IsZero() {
			floor = fmt.Sprintf("%.1f s", s.floorAfter().Seconds())
		}
		phase := s.at.Sub(s.at.Truncate(width)).Seconds()
		fmt.Printf("  %-12s %8.1f s %14s %17s %8s %20s %22s\n", s.stream.key(), phase, last, opened, cmp.Or(s.kind, "-"), detected, floor)
	}
	p50, p90, mx := stats(r.latencies())
	f50, f90, fmx := stats(r.floors())
	d50, d90, dmx := stats(r.deliveries())
	fmt.Printf("  gap.opened after the last event: median %.1f s, p90 %.1f s, max %.1f s (%d of %d); of that after detected_at %.1f / %.1f / %.1f s; watermark past the bucket end: %.1f / %.1f / %.1f s\n",
		p50, p90, mx, len(r.latencies()), len(r.stops), d50, d90, dmx, f50, f90, fmx)
	fmt.Printf("  CPU per %s bucket while live: detector %.3f core-s (%d streams; RSS %.0f MB, peak %.0f MB), ingest %.3f core-s; the rest of the machine: Kafka %.1f, ClickHouse %.1f, other %.1f core-s over %.0f s\n",
		width, r.detectCPU, o.lat.streams, r.detectRSS, r.detectHWM, r.ingestCPU, r.load.kafka, r.load.clickhouse, r.load.other, r.liveBuckets*width.Seconds())
	var others []string
	for _, t := range slices.Sorted(func(yield func(string) bool) {
		for k := range r.others {
			if !yield(k) {
				return
			}
		}
	}) {
		others = append(others, fmt.Sprintf("%s ×%d", t, r.others[t]))
	}
	fmt.Printf("  false gaps: %d; other alerts: %s\n", len(r.falseGaps), cmp.Or(strings.Join(others, ", "), "none"))
	for _, g := range r.falseGaps {
		fmt.Printf("    FALSE GAP: %s\n", g)
	}
}

func printLatencySummary(o options, rs []latResult) {
	width := o.lat.bucket
	across := func(f func(latResult) []float64) (p50, p90, mx float64) {
		var a, b, c []float64
		for _, r := range rs {
			x, y, z := stats(f(r))
			a, b, c = append(a, x), append(b, y), append(c, z)
		}
		return medianOf(a), medianOf(b), medianOf(c)
	}
	fmt.Printf("\n## Live latency (medians over %d runs of %d stopped streams each; %s buckets, %d streams at %g events/s)\n",
		len(rs), o.lat.stop, width, o.lat.streams, o.lat.rate)
	fmt.Printf("  %-58s %8s %8s %8s\n", "from a stream's last event to", "median", "p90", "max")
	row := func(name string, p50, p90, mx float64) {
		fmt.Printf("  %-58s %7.1fs %7.1fs %7.1fs\n", name, p50, p90, mx)
	}
	a, b, c := across(latResult.latencies)
	row("gap.opened on the alert topic (gapwatch)", a, b, c)
	a, b, c = across(latResult.deliveries)
	row("  of which from its detected_at to received", a, b, c)
	a, b, c = across(latResult.floors)
	row("ingest watermark past its bucket's end (pipeline floor)", a, b, c)
	a, b, c = across(func(r latResult) []float64 { return r.statics(15*time.Minute, width) })
	row("static \"no events for 15 min\" rule, by construction", a, b, c)
	a, b, c = across(func(r latResult) []float64 { return r.statics(time.Hour, width) })
	row("static \"no events for 60 min\" rule, by construction", a, b, c)
	var dcpu, icpu, ready []float64
	falseGaps := 0
	for _, r := range rs {
		dcpu, icpu, ready = append(dcpu, r.detectCPU), append(icpu, r.ingestCPU), append(ready, r.readySecs)
		falseGaps += len(r.falseGaps)
	}
	fmt.Printf("  bucket width %s; detector CPU %.3f core-s and ingest %.3f core-s per bucket while live; detector ready %.0f s after start; false gaps %d\n",
		width, medianOf(dcpu), medianOf(icpu), medianOf(ready), falseGaps)
}
