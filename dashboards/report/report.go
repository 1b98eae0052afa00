// Package report builds the coverage report of one tenant over a period: what
// an operator sends a customer or an auditor after an incident. Per source,
// the events detection expected, those that arrived on time, the late data
// that filled holes afterwards, and the share covered; and every hole (gap)
// that overlaps the period, with its figures.
//
// Build reads a store (Gaps and Coverage, as the API serves them) and is
// deterministic: the same stored data gives the same Report, and the writers
// (CSV, JSON, HTML) give the same bytes for the same Report. The JSON form is
// also what GET /api/v1/report answers, so that `gapwatch report --api`
// renders exactly what a report from the store would.
//
// # JSON
//
//	{"tenant", "from", "to",                         // RFC 3339 UTC; from inclusive, to exclusive
//	 "totals": Figures,                              // over every source
//	 "sources": [{"source", ...Figures}],            // sorted by source (bytewise)
//	 "holes": [Hole]}                                // sorted by source, started_at, id
//
// Figures, exact to [from, to), over the buckets detection judged (sources
// still learning have none): "expected_events" (detection's expectation,
// rounded to whole events), "observed_events" (arrived by the time the bucket
// was judged), "filled_late" (events of those buckets that arrived after, by
// event time: per step max(0, received − observed)), "received_events"
// (stored by event time now), "covered_events" (observed + filled_late),
// "missing_events" (per step max(0, expected − covered), summed), "share"
// (covered / expected, at most 1, 1 when under half an event was expected;
// null when nothing was judged in the range, 4 decimals) and "holes" (how
// many holes overlap the range). Steps are whole hours, and buckets in the
// ragged part of the range that is not whole hours.
//
// Hole: "id", "source", "kind" (silence, drop, late), "started_at",
// "ended_at" (null while open), "expected_events", "received_events" (what
// its latest update observed: late data included), "missing_events",
// "filled_late" (events of its period that arrived after it resolved),
// "planned" (inside a maintenance window). A hole's figures are the whole
// hole's, also where it reaches outside the range.
package report

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/gapwatch/gapwatch/storage"
)

// Store is what a report reads; both stores implement it.
type Store interface {
	Gaps(ctx context.Context, q storage.GapQuery) ([]storage.Gap, error)
	Coverage(ctx context.Context, q storage.CoverageQuery) ([]storage.SourceBand, error)
}

// Query asks for the report of one tenant over [From, To).
type Query struct {
	Tenant   string
	From, To time.Time
	// Bucket is the pipeline's bucket width: From and To must be multiples
	// of it. Default 1m.
	Bucket time.Duration
}

// MaxRange bounds a report's period (the hourly rollup's default retention).
const MaxRange = 400 * 24 * time.Hour

// Validate reports a query that cannot be answered; its errors wrap
// storage.ErrBadQuery.
func (q Query) Validate() error {
	b := q.bucket()
	switch {
	case q.Tenant == "":
		return fmt.Errorf("%w: tenant is required", storage.ErrBadQuery)
	case storage.CheckName("tenant", q.Tenant) != nil:
		return storage.CheckName("tenant", q.Tenant)
	case storage.CheckTime("from", q.From) != nil:
		return storage.CheckTime("from", q.From)
	case storage.CheckTime("to", q.To) != nil:
		return storage.CheckTime("to", q.To)
	case !q.From.Before(q.To):
		return fmt.Errorf("%w: from must be before to", storage.ErrBadQuery)
	case q.To.Sub(q.From) > MaxRange:
		return fmt.Errorf("%w: a report covers at most %d days", storage.ErrBadQuery, MaxRange/(24*time.Hour))
	case b < time.Second || b%time.Second != 0:
		return fmt.Errorf("%w: bucket width %s is not whole seconds", storage.ErrBadQuery, b)
	case q.From.Unix()%int64(b/time.Second) != 0 || q.To.Unix()%int64(b/time.Second) != 0 || q.From.Nanosecond() != 0 || q.To.Nanosecond() != 0:
		return fmt.Errorf("%w: from and to must be multiples of the bucket width %s", storage.ErrBadQuery, b)
	}
	return nil
}

func (q Query) bucket() time.Duration {
	if q.Bucket == 0 {
		return time.Minute
	}
	return q.Bucket
}

// Figures are a source's (or all sources') coverage over the range.
type Figures struct {
	Expected   uint64   `json:"expected_events"`
	Observed   uint64   `json:"observed_events"`
	FilledLate uint64   `json:"filled_late"`
	Received   uint64   `json:"received_events"`
	Covered    uint64   `json:"covered_events"`
	Missing    uint64   `json:"missing_events"`
	Share      *float64 `json:"share"`
	Holes      int      `json:"holes"`
}

// SourceFigures are one source's Figures.
type SourceFigures struct {
	Source string `json:"source"`
	Figures
}

// Hole is one gap overlapping the range.
type Hole struct {
	ID         string  `json:"id"`
	Source     string  `json:"source"`
	Kind       string  `json:"kind"`
	StartedAt  string  `json:"started_at"`
	EndedAt    *string `json:"ended_at"`
	Expected   uint64  `json:"expected_events"`
	Received   uint64  `json:"received_events"`
	Missing    uint64  `json:"missing_events"`
	FilledLate uint64  `json:"filled_late"`
	Planned    bool    `json:"planned"`
}

// Report is a tenant's coverage over [From, To).
type Report struct {
	Tenant  string          `json:"tenant"`
	From    string          `json:"from"`
	To      string          `json:"to"`
	Totals  Figures         `json:"totals"`
	Sources []SourceFigures `json:"sources"`
	Holes   []Hole          `json:"holes"`
}

// sums accumulates one source's coverage steps before rounding.
type sums struct {
	expected, missing                   float64
	observed, filled, received, covered uint64
	judged                              bool
	holes                               int
}

func (s *sums) add(b storage.SourceBand) {
	covered := max(b.Observed, b.Received)
	s.expected += b.Expected
	s.observed += b.Observed
	s.received += b.Received
	s.filled += covered - b.Observed
	s.covered += covered
	s.missing += max(0, b.Expected-float64(covered))
	s.judged = true
}

func (s *sums) merge(o *sums) {
	s.expected += o.expected
	s.missing += o.missing
	s.observed += o.observed
	s.filled += o.filled
	s.received += o.received
	s.covered += o.covered
	s.judged = s.judged || o.judged
	s.holes += o.holes
}

func (s *sums) figures() Figures {
	f := Figures{Expected: whole(s.expected), Observed: s.observed, FilledLate: s.filled, Received: s.received,
		Covered: s.covered, Missing: whole(s.missing), Holes: s.holes}
	if s.judged {
		sh := 1.0
		if s.expected >= 0.5 {
			sh = math.Min(1, float64(s.covered)/s.expected)
		}
		sh = math.Round(sh*10000) / 10000
		f.Share = &sh
	}
	return f
}

// whole rounds a non-negative estimate to whole events.
func whole(v float64) uint64 {
	if !(v > 0) {
		return 0
	}
	return uint64(math.Round(v))
}

// coverageChunk is how many steps the first coverage read of a segment spans
// (a day of hours). The next ones span as many as keep sources × steps at
// half storage.MaxCoverageCells for the sources the last one saw; a store
// that refuses as many cells gets halves.
const coverageChunk = 24

// Build reads the report of q from st.
func Build(ctx context.Context, st Store, q Query) (*Report, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	bySource := map[string]*sums{}
	get := func(src string) *sums {
		s := bySource[src]
		if s == nil {
			s = &sums{}
			bySource[src] = s
		}
		return s
	}
	for _, seg := range segments(q.From, q.To, q.bucket()) {
		if err := readCoverage(ctx, st, q.Tenant, q.bucket(), seg, func(b storage.SourceBand) { get(b.Source).add(b) }); err != nil {
			return nil, err
		}
	}
	gaps, err := readGaps(ctx, st, storage.GapQuery{Tenant: q.Tenant, State: storage.GapsAll, From: q.From, To: q.To})
	if err != nil {
		return nil, err
	}
	r := &Report{Tenant: q.Tenant, From: stamp(q.From), To: stamp(q.To), Sources: []SourceFigures{}, Holes: make([]Hole, 0, len(gaps))}
	for _, g := range gaps {
		get(g.Source).holes++
		h := Hole{ID: g.ID, Source: g.Source, Kind: g.Kind, StartedAt: stamp(g.StartedAt),
			Expected: whole(g.Expected), Received: whole(g.Observed), Missing: whole(g.Missing), FilledLate: whole(g.FilledLate()), Planned: g.Planned}
		if !g.Open() {
			e := stamp(g.EndedAt)
			h.EndedAt = &e
		}
		r.Holes = append(r.Holes, h)
	}
	slices.SortFunc(r.Holes, func(a, b Hole) int {
		if c := strings.Compare(a.Source, b.Source); c != 0 {
			return c
		}
		if c := strings.Compare(a.StartedAt, b.StartedAt); c != 0 { // RFC 3339 UTC, whole seconds: sorts as time
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	sources := make([]string, 0, len(bySource))
	for src := range bySource {
		sources = append(sources, src)
	}
	slices.Sort(sources)
	var total sums
	for _, src := range sources {
		s := bySource[src]
		total.merge(s)
		r.Sources = append(r.Sources, SourceFigures{Source: src, Figures: s.figures()})
	}
	r.Totals = total.figures()
	return r, nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// segment is a part of the range read with one step.
type segment struct {
	from, to time.Time
	step     time.Duration
}

// segments splits [from, to) into whole hours read hour by hour and the
// ragged ends (or all of it, when the bucket does not divide an hour) read
// bucket by bucket: few cells for long ranges, every bucket exact.
func segments(from, to time.Time, bucket time.Duration) []segment {
	if time.Hour%bucket != 0 {
		return []segment{{from, to, bucket}}
	}
	h0 := from.Truncate(time.Hour)
	if h0.Before(from) {
		h0 = h0.Add(time.Hour)
	}
	h1 := to.Truncate(time.Hour)
	if !h0.Before(h1) {
		return []segment{{from, to, bucket}}
	}
	var out []segment
	if from.Before(h0) {
		out = append(out, segment{from, h0, bucket})
	}
	out = append(out, segment{h0, h1, time.Hour})
	if h1.Before(to) {
		out = append(out, segment{h1, to, bucket})
	}
	return out
}

// readCoverage reads seg's coverage in chunks of steps, each aligned to the
// step so that its steps are exactly the segment's.
func readCoverage(ctx context.Context, st Store, tenant string, bucket time.Duration, seg segment, add func(storage.SourceBand)) error {
	chunk := time.Duration(coverageChunk) * seg.step
	for at := seg.from; at.Before(seg.to); {
		end := at.Add(chunk)
		if end.After(seg.to) {
			end = seg.to
		}
		bands, err := st.Coverage(ctx, storage.CoverageQuery{Tenant: tenant, From: at, To: end, Step: seg.step, Bucket: bucket})
		if errors.Is(err, storage.ErrBadQuery) && chunk > seg.step {
			chunk = max(seg.step, (chunk/2/seg.step)*seg.step) // too many sources × steps: fewer steps
			continue
		}
		if err != nil {
			return fmt.Errorf("reading coverage of %s from %s: %w", tenant, stamp(at), err)
		}
		sources := 0
		for i, b := range bands {
			if i == 0 || bands[i-1].Source != b.Source {
				sources++
			}
			add(b)
		}
		steps := min(storage.MaxPoints, storage.MaxCoverageCells/2/max(1, sources))
		chunk = time.Duration(steps) * seg.step
		at = end
	}
	return nil
}

// readGaps reads every gap of q, page by page.
func readGaps(ctx context.Context, st Store, q storage.GapQuery) ([]storage.Gap, error) {
	q.Limit = storage.MaxGaps
	var out []storage.Gap
	for {
		page, err := st.Gaps(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("reading gaps of %s: %w", q.Tenant, err)
		}
		out = append(out, page...)
		if len(page) < q.Limit {
			return out, nil
		}
		q.After = page[len(page)-1].Cursor()
	}
}
