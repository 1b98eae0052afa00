package chstore

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gapwatch/gapwatch/storage"
)

// WriteExpectations stores live detection's expectations in one insert. Each
// row goes to the partition of its bucket's UTC day, so retention drops them by
// the day they describe. Writing the same rows again is harmless: readers take
// one row per (tenant, source, bucket).
func (s *Store) WriteExpectations(ctx context.Context, xs []storage.Expectation) error {
	if len(xs) == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, s.q(qInsertExpectations))
	if err != nil {
		return fmt.Errorf("preparing expectations insert: %w", err)
	}
	defer batch.Abort() //nolint:errcheck // no-op after Send
	n := len(xs)
	var (
		days     = make([]time.Time, n)
		tenants  = make([]string, n)
		sources  = make([]string, n)
		buckets  = make([]time.Time, n)
		expected = make([]float64, n)
		lower    = make([]float64, n)
		upper    = make([]float64, n)
		observed = make([]uint64, n)
		states   = make([]string, n)
	)
	for i, x := range xs {
		b := time.Unix(x.Bucket, 0).UTC()
		days[i], tenants[i], sources[i], buckets[i] = b.Truncate(24*time.Hour), x.Tenant, x.Source, b
		expected[i], lower[i], upper[i], observed[i], states[i] = x.Expected, x.Lower, x.Upper, x.Observed, x.State
	}
	for i, col := range []any{days, tenants, sources, buckets, expected, lower, upper, observed, states} {
		if err := batch.Column(i).Append(col); err != nil {
			return fmt.Errorf("appending expectations column %d: %w", i, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("inserting %d rows into %s.expectations: %w", n, s.cfg.Database, err)
	}
	return nil
}

// Bands returns the stored expectations of q's stream summed per step of q,
// for the steps that have any, in step order. Only the arrival clock has
// expectations: for the event clock it returns none.
func (s *Store) Bands(ctx context.Context, q storage.RateQuery) ([]storage.Band, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if q.Clock != storage.Arrival {
		return nil, nil
	}
	start, step, lo, hi := stepRange(q)
	rows, err := s.conn.Query(ctx, s.q(qBands), start, step, q.Tenant, q.Source, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("querying expectations: %w", err)
	}
	defer rows.Close()
	var out []storage.Band
	for rows.Next() {
		var b storage.Band
		if err := rows.Scan(&b.I, &b.Expected, &b.Lower, &b.Upper, &b.Observed, &b.Buckets); err != nil {
			return nil, fmt.Errorf("reading expectations: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading expectations: %w", err)
	}
	return out, nil
}

// Coverage returns, for every source of q.Tenant with expectations in the
// steps of q, its bands as Bands would (sorted by source, then step). It
// refuses (storage.ErrBadQuery) an answer of more than
// storage.MaxCoverageCells sources × steps, the grid a caller lays it out on;
// the rows read are bounded by the same number.
//
// Taking one expectation per bucket (rows written twice count once) and the
// events of only the buckets with one costs a hash table of every (source,
// bucket): the exact reads. With q.Bucket known, the fast reads sum per
// source and step directly; a source with a step that had a bucket written
// twice, or a bucket without expectation, is then read exactly.
func (s *Store) Coverage(ctx context.Context, q storage.CoverageQuery) ([]storage.SourceBand, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	rq := q.Rate("")
	_, steps := rq.Steps()
	start, step, lo, hi := stepRange(rq)
	width := int64(q.Bucket / time.Second)
	if width <= 0 || step%width != 0 {
		return s.coverageExact(ctx, q.Tenant, start, step, lo, hi, steps, nil)
	}
	rows, err := s.conn.Query(ctx, s.q(qCoverageFast), start, step, q.Tenant, lo, hi, uint64(storage.MaxCoverageCells+1))
	if err != nil {
		return nil, fmt.Errorf("querying coverage: %w", err)
	}
	defer rows.Close()
	var out []storage.SourceBand
	sources := 0
	dirty := map[string]bool{}
	for rows.Next() {
		var b storage.SourceBand
		var rowCount uint32
		if err := rows.Scan(&b.Source, &b.I, &b.Expected, &b.Lower, &b.Upper, &b.Observed, &rowCount, &b.Buckets); err != nil {
			return nil, fmt.Errorf("reading coverage: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].Source != b.Source {
			sources++
		}
		if rowCount != b.Buckets || int64(b.Buckets) != slots(start+b.I*step, start+(b.I+1)*step, lo, hi, width) {
			dirty[b.Source] = true
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading coverage: %w", err)
	}
	if len(out) > storage.MaxCoverageCells || sources*steps > storage.MaxCoverageCells {
		return nil, tooManyCells(len(out) > storage.MaxCoverageCells, sources, steps)
	}
	if len(out) == 0 {
		return nil, nil
	}
	if err := s.addReceived(ctx, s.q(qCoverageCounts), []any{start, step, q.Tenant, lo, hi}, out); err != nil {
		return nil, err
	}
	if len(dirty) == 0 {
		return out, nil
	}
	var only []string
	if len(dirty) <= maxOnlySources {
		only = slices.Sorted(maps.Keys(dirty))
	}
	exact, err := s.coverageExact(ctx, q.Tenant, start, step, lo, hi, steps, only)
	if err != nil {
		return nil, err
	}
	out = slices.DeleteFunc(out, func(b storage.SourceBand) bool { return dirty[b.Source] })
	for _, b := range exact {
		if dirty[b.Source] {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, cmpSourceBand)
	return out, nil
}

// maxOnlySources bounds the sources named in one exact coverage read; with
// more, it reads the whole tenant.
const maxOnlySources = 500

// slots returns how many buckets of width start in [from, to) ∩ [lo, hi).
func slots(from, to, lo, hi, width int64) int64 {
	from, to = max(from, lo), min(to, hi)
	first := -floorDivInt(-from, width) * width // the first multiple of width at or after from
	if first >= to {
		return 0
	}
	return (to - first + width - 1) / width
}

func floorDivInt(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// coverageExact reads the coverage of tenant taking one expectation per
// bucket, and the events of only the buckets with one; of the sources only
// when not nil.
func (s *Store) coverageExact(ctx context.Context, tenant string, start, step, lo, hi int64, steps int, only []string) ([]storage.SourceBand, error) {
	cond, names := "", []any{}
	if only != nil {
		cond = " AND source IN (" + placeholders(len(only), "?") + ")"
		for _, src := range only {
			names = append(names, src)
		}
	}
	sql := strings.ReplaceAll(s.q(qCoverage), "{only}", cond)
	args := append(append([]any{start, step, tenant, lo, hi}, names...), uint64(storage.MaxCoverageCells+1))
	rows, err := s.conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("querying coverage: %w", err)
	}
	defer rows.Close()
	var out []storage.SourceBand
	sources := 0
	for rows.Next() {
		var b storage.SourceBand
		if err := rows.Scan(&b.Source, &b.I, &b.Expected, &b.Lower, &b.Upper, &b.Observed, &b.Buckets); err != nil {
			return nil, fmt.Errorf("reading coverage: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].Source != b.Source {
			sources++
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading coverage: %w", err)
	}
	if len(out) > storage.MaxCoverageCells || sources*steps > storage.MaxCoverageCells {
		return nil, tooManyCells(len(out) > storage.MaxCoverageCells, sources, steps)
	}
	if len(out) > 0 {
		sql := strings.ReplaceAll(s.q(qCoverageReceived), "{only}", cond)
		args := append(append(append([]any{start, step, tenant, lo, hi}, names...), tenant, lo, hi), names...)
		if err := s.addReceived(ctx, sql, args, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// addReceived fills in the Received of out (sorted by source and step) from
// the (source, step, events) rows of sql.
func (s *Store) addReceived(ctx context.Context, sql string, args []any, out []storage.SourceBand) error {
	rows, err := s.conn.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("querying coverage received: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			source string
			i      int64
			n      uint64
		)
		if err := rows.Scan(&source, &i, &n); err != nil {
			return fmt.Errorf("reading coverage received: %w", err)
		}
		j, ok := slices.BinarySearchFunc(out, storage.SourceBand{Source: source, Band: storage.Band{I: i}}, cmpSourceBand)
		if ok {
			out[j].Received = n
		}
	}
	return rows.Err()
}

func cmpSourceBand(a, b storage.SourceBand) int {
	if c := strings.Compare(a.Source, b.Source); c != 0 {
		return c
	}
	return cmp.Compare(a.I, b.I)
}

func tooManyCells(truncated bool, sources, steps int) error {
	if truncated {
		return fmt.Errorf("%w: coverage has more than %d cells: narrow the range or widen the step", storage.ErrBadQuery, storage.MaxCoverageCells)
	}
	return fmt.Errorf("%w: coverage of %d sources × %d steps is more than %d cells: narrow the range or widen the step",
		storage.ErrBadQuery, sources, steps, storage.MaxCoverageCells)
}

// stepRange returns the bounds of q's steps as Rates takes them: the first
// step's start and the step in seconds, and the bucket range [lo, hi) they
// cover, held to what a DateTime can represent.
func stepRange(q storage.RateQuery) (start, step, lo, hi int64) {
	start, n := q.Steps()
	step = int64(q.Step / time.Second)
	const lastDateTime = 1<<32 - 1
	lo = min(max(start, 0), lastDateTime)
	hi = min(max(start+int64(n)*step, 0), lastDateTime)
	return start, step, lo, hi
}
