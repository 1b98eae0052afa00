package report_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/gapwatch/gapwatch/dashboards/report"
	"github.com/gapwatch/gapwatch/internal/servers"
	"github.com/gapwatch/gapwatch/storage"
)

// monthStore answers like a store holding a month of 1 000 sources of one
// tenant, judged every bucket, with a hole every ~15 days per source.
type monthStore struct {
	sources []string
	gaps    []storage.Gap
}

func newMonthStore(from time.Time) *monthStore {
	m := &monthStore{}
	for i := range 1000 {
		src := fmt.Sprintf("source-%04d", i)
		m.sources = append(m.sources, src)
		for d := 0; d < 30; d += 15 {
			start := from.Add(time.Duration(d*24+i%24) * time.Hour)
			m.gaps = append(m.gaps, storage.Gap{ID: fmt.Sprintf("g-%s-%d", src, d), Tenant: "acme", Source: src, Kind: "silence",
				StartedAt: start, DetectedAt: start.Add(3 * time.Minute), EndedAt: start.Add(40 * time.Minute),
				Expected: 400, Observed: 250, Missing: 150, ResolvedObserved: 100})
		}
	}
	return m
}

func (m *monthStore) Coverage(_ context.Context, q storage.CoverageQuery) ([]storage.SourceBand, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	_, n := q.Rate("").Steps()
	if n*len(m.sources) > storage.MaxCoverageCells {
		return nil, storage.ErrBadQuery
	}
	out := make([]storage.SourceBand, 0, n*len(m.sources))
	per := float64(q.Step / time.Minute)
	for _, src := range m.sources {
		for i := range n {
			out = append(out, storage.SourceBand{Source: src, Band: storage.Band{I: int64(i), Expected: 10.25 * per, Observed: uint64(9 * per),
				Buckets: uint32(per)}, Received: uint64(10 * per)})
		}
	}
	return out, nil
}

func (m *monthStore) Gaps(_ context.Context, q storage.GapQuery) ([]storage.Gap, error) {
	var out []storage.Gap
	for _, g := range m.gaps {
		if q.Matches(g) {
			out = append(out, g)
		}
	}
	return out, nil
}

// BenchmarkMonthOf1000Sources builds and writes the report of a month (whole
// hours, 720 steps) of 1 000 sources with 2 000 holes: the report's own cost
// over what the store answers.
func BenchmarkMonthOf1000Sources(b *testing.B) {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	st := newMonthStore(from)
	q := report.Query{Tenant: "acme", From: from, To: from.AddDate(0, 0, 30)}
	for _, format := range report.Formats {
		b.Run(format, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r, err := report.Build(context.Background(), st, q)
				if err != nil {
					b.Fatal(err)
				}
				if len(r.Sources) != 1000 || len(r.Holes) != 2000 {
					b.Fatalf("%d sources, %d holes", len(r.Sources), len(r.Holes))
				}
				if err := r.Write(io.Discard, format); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkClickHouse1000Sources reports on 1 000 sources of one tenant
// judged every minute for GAPWATCH_REPORT_BENCH_DAYS days (default 1) in
// real ClickHouse (GAPWATCH_INTEGRATION=1): the time grows with the days.
func BenchmarkClickHouse1000Sources(b *testing.B) {
	st, _ := servers.ClickHouse(b)
	days := 1
	if d, err := strconv.Atoi(os.Getenv("GAPWATCH_REPORT_BENCH_DAYS")); err == nil && d > 0 {
		days = d
	}
	ctx := context.Background()
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	began := time.Now()
	for h := range days * 24 {
		var xs []storage.Expectation
		var counts []storage.Count
		for i := range 1000 {
			src := fmt.Sprintf("source-%04d", i)
			for m := range 60 {
				bucket := from.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute).Unix()
				xs = append(xs, storage.Expectation{Tenant: "acme", Source: src, Bucket: bucket, Expected: 10.25, Lower: 5, Upper: 20, Observed: 9, State: "ok"})
				counts = append(counts, storage.Count{Tenant: "acme", Source: src, Clock: storage.Event, Bucket: bucket, Events: 10, Arrival: bucket + 5})
			}
		}
		if err := st.WriteExpectations(ctx, xs); err != nil {
			b.Fatal(err)
		}
		if err := st.Write(ctx, storage.Batch{Counts: counts}); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("stored %d days × 1 000 sources × 1 440 minutes (expectations and counts) in %s", days, time.Since(began).Round(time.Second))
	q := report.Query{Tenant: "acme", From: from, To: from.AddDate(0, 0, days)}
	b.ResetTimer()
	for b.Loop() {
		r, err := report.Build(ctx, st, q)
		if err != nil {
			b.Fatal(err)
		}
		if len(r.Sources) != 1000 || r.Totals.Received != uint64(days*1440*1000*10) {
			b.Fatalf("%d sources, %d received", len(r.Sources), r.Totals.Received)
		}
	}
}
