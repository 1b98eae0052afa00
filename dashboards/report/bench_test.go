package report_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/gapwatch/gapwatch/dashboards/report"
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
