package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/storage"
)

// ExpectationStore is what the expectation conformance test exercises.
type ExpectationStore interface {
	Write(ctx context.Context, b storage.Batch) error
	WriteExpectations(ctx context.Context, xs []storage.Expectation) error
	Bands(ctx context.Context, q storage.RateQuery) ([]storage.Band, error)
	Coverage(ctx context.Context, q storage.CoverageQuery) ([]storage.SourceBand, error)
}

// expectationSources are the sources of the expectation conformance data, in
// no sorted order; one is hostile.
var expectationSources = []string{"firewall", "SignInLogs", Tenants[1], "semi;colon -- comment"}

// Expectations returns the expectation conformance input: every tenant of
// Tenants × expectationSources, minute buckets across two hours with holes,
// each (tenant, source, bucket) once. The values are exact in binary, so sums
// do not depend on the order a store adds them in.
func Expectations() []storage.Expectation {
	states := []string{"ok", "gap", "drop", "late"}
	var out []storage.Expectation
	for ti, tenant := range Tenants {
		for si, source := range expectationSources {
			for m := 0; m < 130; m += 1 + (ti+si)%3 {
				k := (m*7 + ti*3 + si*5) % 13
				out = append(out, storage.Expectation{
					Tenant: tenant, Source: source, Bucket: Base.Add(time.Duration(m) * time.Minute).Unix(),
					Expected: float64(k) + 0.5, Lower: float64(k) / 2, Upper: float64(2*k) + 1.25,
					Observed: uint64((m*5 + ti + si) % 11), State: states[m%len(states)],
				})
			}
		}
	}
	return out
}

// referenceBands sums xs (distinct rows) as Bands must answer q.
func referenceBands(xs []storage.Expectation, q storage.RateQuery) []storage.Band {
	start, n := q.Steps()
	step := int64(q.Step / time.Second)
	byStep := map[int64]*storage.Band{}
	for _, x := range xs {
		if x.Tenant != q.Tenant || x.Source != q.Source || x.Bucket < start || x.Bucket >= start+int64(n)*step {
			continue
		}
		i := (x.Bucket - start) / step
		if byStep[i] == nil {
			byStep[i] = &storage.Band{I: i}
		}
		b := byStep[i]
		b.Expected, b.Lower, b.Upper = b.Expected+x.Expected, b.Lower+x.Lower, b.Upper+x.Upper
		b.Observed += x.Observed
		b.Buckets++
	}
	var out []storage.Band
	for _, b := range byStep {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b storage.Band) int { return cmp.Compare(a.I, b.I) })
	return out
}

// referenceCoverage answers q from xs (distinct rows) and the counts of
// batches by brute force.
func referenceCoverage(xs []storage.Expectation, batches []storage.Batch, q storage.CoverageQuery) []storage.SourceBand {
	var sources []string
	for _, x := range xs {
		if x.Tenant == q.Tenant && !slices.Contains(sources, x.Source) {
			sources = append(sources, x.Source)
		}
	}
	slices.Sort(sources)
	var out []storage.SourceBand
	for _, src := range sources {
		rq := q.Rate(src)
		start, _ := rq.Steps()
		step := int64(q.Step / time.Second)
		for _, b := range referenceBands(xs, rq) {
			sb := storage.SourceBand{Source: src, Band: b}
			for _, batch := range batches {
				for _, c := range batch.Counts {
					if c.Clock == storage.Event && c.Tenant == q.Tenant && c.Source == src && c.Bucket >= start &&
						(c.Bucket-start)/step == b.I && slices.ContainsFunc(xs, func(x storage.Expectation) bool {
						return x.Tenant == c.Tenant && x.Source == c.Source && x.Bucket == c.Bucket
					}) {
						sb.Received += c.Events
					}
				}
			}
			out = append(out, sb)
		}
	}
	return out
}

// RunExpectations checks that detection's expectations are summed per step
// for one stream (Bands) and per source and step for one tenant (Coverage),
// that rows written again count once, that hostile names are data, and that
// bad or oversized queries are refused with storage.ErrBadQuery. s must hold
// no expectations yet.
func RunExpectations(t *testing.T, s ExpectationStore) {
	ctx := context.Background()
	xs := Expectations()
	// Counts too: coverage's Received sums the event clock's.
	batches := Batches()
	for _, b := range batches {
		require.NoError(t, s.Write(ctx, b))
	}
	require.NoError(t, s.WriteExpectations(ctx, nil), "nothing to write is a no-op")
	require.NoError(t, s.WriteExpectations(ctx, []storage.Expectation{}))

	// Written in three parts, then partly again (a restarted detector), and
	// once with a row twice in one write (replicas' rows in one insert).
	third := len(xs) / 3
	require.NoError(t, s.WriteExpectations(ctx, xs[2*third:]))
	require.NoError(t, s.WriteExpectations(ctx, xs[:third]))
	require.NoError(t, s.WriteExpectations(ctx, xs[third:2*third]))
	var again []storage.Expectation
	for i := 0; i < len(xs); i += 3 {
		again = append(again, xs[i])
	}
	require.NoError(t, s.WriteExpectations(ctx, again))
	require.NoError(t, s.WriteExpectations(ctx, []storage.Expectation{xs[1], xs[1], xs[4]}))

	bands := func(q storage.RateQuery) []storage.Band {
		t.Helper()
		got, err := s.Bands(ctx, q)
		require.NoError(t, err, "%+v", q)
		if len(got) == 0 {
			return nil
		}
		return got
	}
	coverage := func(q storage.CoverageQuery) []storage.SourceBand {
		t.Helper()
		got, err := s.Coverage(ctx, q)
		require.NoError(t, err, "%+v", q)
		if len(got) == 0 {
			return nil
		}
		return got
	}

	t.Run("several buckets per step, duplicates once", func(t *testing.T) {
		hand := []storage.Expectation{
			{Tenant: "hand", Source: "fw", Bucket: Base.Unix(), Expected: 1.5, Lower: 1, Upper: 2, Observed: 1, State: "ok"},
			{Tenant: "hand", Source: "fw", Bucket: Base.Add(time.Minute).Unix(), Expected: 2.5, Lower: 2, Upper: 3.5, Observed: 4, State: "ok"},
			{Tenant: "hand", Source: "fw", Bucket: Base.Add(5 * time.Minute).Unix(), Expected: 4, Lower: 3, Upper: 5, Observed: 0, State: "gap"},
			{Tenant: "hand", Source: "dns", Bucket: Base.Add(time.Minute).Unix(), Expected: 8, Lower: 7, Upper: 9, Observed: 8, State: "ok"},
		}
		require.NoError(t, s.WriteExpectations(ctx, hand))
		require.NoError(t, s.WriteExpectations(ctx, hand[1:2]))
		// Received: event-clock events of the buckets with an expectation,
		// late ones included; not those of other buckets or of the arrival clock.
		require.NoError(t, s.Write(ctx, storage.Batch{Counts: []storage.Count{
			{Tenant: "hand", Source: "fw", Clock: storage.Event, Bucket: Base.Unix(), Events: 1, Arrival: Base.Unix() + 5},
			{Tenant: "hand", Source: "fw", Clock: storage.Event, Bucket: Base.Add(time.Minute).Unix(), Events: 3, Arrival: Base.Unix() + 65},
			{Tenant: "hand", Source: "fw", Clock: storage.Event, Bucket: Base.Add(2 * time.Minute).Unix(), Events: 7, Arrival: Base.Unix() + 125},
			{Tenant: "hand", Source: "fw", Clock: storage.Arrival, Bucket: Base.Add(5 * time.Minute).Unix(), Events: 9},
		}}))
		require.NoError(t, s.Write(ctx, storage.Batch{Counts: []storage.Count{
			{Tenant: "hand", Source: "fw", Clock: storage.Event, Bucket: Base.Add(5 * time.Minute).Unix(), Events: 2, Arrival: Base.Unix() + 3600},
		}}))
		q := storage.RateQuery{Tenant: "hand", Source: "fw", From: Base, To: Base.Add(10 * time.Minute), Step: 5 * time.Minute}
		require.Equal(t, []storage.Band{
			{I: 0, Expected: 4, Lower: 3, Upper: 5.5, Observed: 5, Buckets: 2},
			{I: 1, Expected: 4, Lower: 3, Upper: 5, Observed: 0, Buckets: 1},
		}, bands(q))
		q.From = Base.Add(2 * time.Minute) // the first step still starts at Base
		require.Equal(t, []storage.Band{
			{I: 0, Expected: 4, Lower: 3, Upper: 5.5, Observed: 5, Buckets: 2},
			{I: 1, Expected: 4, Lower: 3, Upper: 5, Observed: 0, Buckets: 1},
		}, bands(q))
		require.Equal(t, []storage.SourceBand{
			{Source: "dns", Band: storage.Band{I: 0, Expected: 8, Lower: 7, Upper: 9, Observed: 8, Buckets: 1}},
			{Source: "fw", Band: storage.Band{I: 0, Expected: 8, Lower: 6, Upper: 10.5, Observed: 5, Buckets: 3}, Received: 6},
		}, coverage(storage.CoverageQuery{Tenant: "hand", From: Base, To: Base.Add(time.Hour), Step: time.Hour}))
		for _, step := range []time.Duration{time.Minute, 5 * time.Minute, time.Hour} {
			cq := storage.CoverageQuery{Tenant: "hand", From: Base, To: Base.Add(time.Hour), Step: step}
			want := coverage(cq)
			cq.Bucket = time.Minute
			require.Equal(t, want, coverage(cq), "step %s: the bucket width changes nothing", step)
		}

		// A replayed bucket whose row differs still counts once: one of the rows.
		first := storage.Expectation{Tenant: "replay", Source: "fw", Bucket: Base.Unix(), Expected: 10, Lower: 5, Upper: 20, Observed: 3, State: "ok"}
		second := first
		second.Expected, second.Lower, second.Upper, second.Observed, second.State = 12, 6, 24, 3, "gap"
		require.NoError(t, s.WriteExpectations(ctx, []storage.Expectation{first}))
		require.NoError(t, s.WriteExpectations(ctx, []storage.Expectation{second}))
		got := bands(storage.RateQuery{Tenant: "replay", Source: "fw", From: Base, To: Base.Add(time.Hour), Step: time.Hour})
		require.Len(t, got, 1)
		require.Contains(t, [][]storage.Band{referenceBands([]storage.Expectation{first}, storage.RateQuery{Tenant: "replay", Source: "fw", From: Base, To: Base.Add(time.Hour), Step: time.Hour}),
			referenceBands([]storage.Expectation{second}, storage.RateQuery{Tenant: "replay", Source: "fw", From: Base, To: Base.Add(time.Hour), Step: time.Hour})}, got)
	})

	var queries []storage.RateQuery
	for _, tenant := range Tenants {
		for _, source := range expectationSources {
			queries = append(queries,
				storage.RateQuery{Tenant: tenant, Source: source, From: Base, To: Base.Add(130 * time.Minute), Step: time.Minute},
				storage.RateQuery{Tenant: tenant, Source: source, From: Base.Add(-time.Hour), To: Base.Add(3 * time.Hour), Step: 5 * time.Minute},
				storage.RateQuery{Tenant: tenant, Source: source, From: Base.Add(-2 * time.Hour), To: Base.Add(4 * time.Hour), Step: time.Hour},
				storage.RateQuery{Tenant: tenant, Source: source, From: Base.Add(17 * time.Minute), To: Base.Add(77 * time.Minute), Step: 10 * time.Minute},
				storage.RateQuery{Tenant: tenant, Source: source, From: Base.Add(90 * time.Second), To: Base.Add(150 * time.Second), Step: time.Minute},
			)
		}
	}
	for _, q := range queries {
		t.Run(fmt.Sprintf("bands/%s/%s/%s/%s", q.Tenant, q.Source, q.From.Format("15:04:05"), q.Step), func(t *testing.T) {
			want := referenceBands(xs, q)
			if q.To.Sub(q.From) >= time.Hour {
				require.NotEmpty(t, want, "the query covers written data")
			}
			require.Equal(t, want, bands(q))
		})
	}
	t.Run("bands summed", func(t *testing.T) {
		// The hourly steps of one stream hold every written bucket, several per step.
		q := storage.RateQuery{Tenant: Tenants[1], Source: Tenants[1], From: Base.Add(-2 * time.Hour), To: Base.Add(4 * time.Hour), Step: time.Hour}
		got := bands(q)
		var buckets uint32
		for _, b := range got {
			require.Greater(t, b.Buckets, uint32(1))
			buckets += b.Buckets
		}
		n := 0
		for _, x := range xs {
			if x.Tenant == q.Tenant && x.Source == q.Source {
				n++
			}
		}
		require.Equal(t, uint32(n), buckets, "each bucket once, duplicates included")
	})

	t.Run("bands of nothing", func(t *testing.T) {
		for _, q := range []storage.RateQuery{
			{Tenant: "nobody", Source: "firewall", From: Base, To: Base.Add(time.Hour), Step: time.Minute},
			{Tenant: "acme", Source: "nothing", From: Base, To: Base.Add(time.Hour), Step: time.Minute},
			{Tenant: "acme", Source: "firewall", From: Base.Add(24 * time.Hour), To: Base.Add(25 * time.Hour), Step: time.Minute},
			{Tenant: "acme", Source: "firewall", From: Base.Add(-time.Hour), To: Base, Step: time.Minute},
			{Tenant: "acme", Source: "firewall", Clock: storage.Event, From: Base, To: Base.Add(2 * time.Hour), Step: time.Minute},
			{Tenant: "acme", Source: "Firewall", From: Base, To: Base.Add(2 * time.Hour), Step: time.Minute},
			{Tenant: `x' OR '1'='1' --`, Source: "firewall", From: Base, To: Base.Add(2 * time.Hour), Step: time.Minute},
		} {
			require.Nil(t, bands(q), "%+v", q)
		}
	})

	t.Run("coverage", func(t *testing.T) {
		var received uint64
		for _, tenant := range Tenants {
			var qs []storage.CoverageQuery
			for _, bucket := range []time.Duration{0, time.Minute} { // the bucket width known or not: the same answers
				qs = append(qs,
					storage.CoverageQuery{Tenant: tenant, From: Base, To: Base.Add(130 * time.Minute), Step: time.Minute, Bucket: bucket},
					storage.CoverageQuery{Tenant: tenant, From: Base.Add(17 * time.Minute), To: Base.Add(2 * time.Hour), Step: 10 * time.Minute, Bucket: bucket},
					storage.CoverageQuery{Tenant: tenant, From: Base.Add(-time.Hour), To: Base.Add(3 * time.Hour), Step: time.Hour, Bucket: bucket},
				)
			}
			for _, q := range qs {
				want := referenceCoverage(xs, batches, q)
				got := coverage(q)
				require.Equal(t, want, got, "%+v", q)
				// Sorted by source, then step; every source once, each as Bands answers it.
				var sources []string
				for i, b := range got {
					if i == 0 || got[i-1].Source != b.Source {
						sources = append(sources, b.Source)
					} else {
						require.Less(t, got[i-1].I, b.I)
					}
				}
				require.True(t, slices.IsSorted(sources), "sources %q", sources)
				require.ElementsMatch(t, expectationSources, sources)
				var each []storage.SourceBand
				for _, src := range sources {
					for _, b := range bands(q.Rate(src)) {
						each = append(each, storage.SourceBand{Source: src, Band: b})
					}
				}
				withoutReceived := slices.Clone(got)
				for i := range withoutReceived {
					received += withoutReceived[i].Received
					withoutReceived[i].Received = 0
				}
				require.Equal(t, each, withoutReceived)
			}
		}
		require.NotZero(t, received, "the coverage data has event-clock counts in buckets with expectations")
		require.Nil(t, coverage(storage.CoverageQuery{Tenant: "nobody", From: Base, To: Base.Add(time.Hour), Step: time.Minute}))
		require.Nil(t, coverage(storage.CoverageQuery{Tenant: "acme", From: Base.Add(24 * time.Hour), To: Base.Add(25 * time.Hour), Step: time.Minute}))
		require.Nil(t, coverage(storage.CoverageQuery{Tenant: `x' OR '1'='1' --`, From: Base, To: Base.Add(time.Hour), Step: time.Minute}))
	})

	t.Run("coverage with the bucket width known", func(t *testing.T) {
		// Sources that a store can sum per step directly (every bucket judged
		// once) next to ones it cannot: a hole in the judged buckets with
		// events in it, a bucket written twice, judging that starts mid-step.
		var cx []storage.Expectation
		var counts []storage.Count
		for m := range 120 {
			bucket := Base.Add(time.Duration(m) * time.Minute).Unix()
			x := func(source string) storage.Expectation {
				return storage.Expectation{Tenant: "widths", Source: source, Bucket: bucket, Expected: float64(m%7) + 0.5, Lower: 1, Upper: 9,
					Observed: uint64(m % 5), State: "ok"}
			}
			for _, src := range []string{"full", "holes", "twice", "late start", Tenants[1]} {
				counts = append(counts, storage.Count{Tenant: "widths", Source: src, Clock: storage.Event, Bucket: bucket, Events: uint64(m%9 + 1)})
				switch {
				case src == "holes" && m >= 10 && m < 15, src == "late start" && m < 30:
					continue
				}
				cx = append(cx, x(src))
				if src == "twice" && m == 30 {
					cx = append(cx, x(src))
				}
			}
		}
		require.NoError(t, s.Write(ctx, storage.Batch{Counts: counts}))
		require.NoError(t, s.WriteExpectations(ctx, cx))
		distinct := slices.DeleteFunc(slices.Clone(cx), func(x storage.Expectation) bool {
			return x.Source == "twice" && x.Bucket == Base.Add(30*time.Minute).Unix()
		})
		distinct = append(distinct, cx[slices.IndexFunc(cx, func(x storage.Expectation) bool {
			return x.Source == "twice" && x.Bucket == Base.Add(30*time.Minute).Unix()
		})])
		batches := []storage.Batch{{Counts: counts}}
		for _, from := range []time.Time{Base, Base.Add(7 * time.Minute)} {
			for _, step := range []time.Duration{time.Minute, 5 * time.Minute, time.Hour, 2 * time.Hour} {
				q := storage.CoverageQuery{Tenant: "widths", From: from, To: Base.Add(2 * time.Hour), Step: step}
				want := referenceCoverage(distinct, batches, q)
				require.Len(t, want[len(want)-1:], 1)
				require.Equal(t, want, coverage(q), "%+v", q)
				q.Bucket = time.Minute
				require.Equal(t, want, coverage(q), "%+v", q)
			}
		}
	})

	t.Run("coverage cells bounded", func(t *testing.T) {
		// More sources than fit MaxPoints steps each: the widest answerable
		// range has steps × sources just within MaxCoverageCells.
		sources := storage.MaxCoverageCells/storage.MaxPoints + 1
		steps := storage.MaxCoverageCells / sources
		require.LessOrEqual(t, steps+1, storage.MaxPoints)
		var wide []storage.Expectation
		for k := range sources {
			wide = append(wide, storage.Expectation{Tenant: "wide", Source: fmt.Sprintf("s%03d", k),
				Bucket: Base.Add(time.Duration(k) * time.Minute).Unix(), Expected: 1, Lower: 0, Upper: 2, Observed: 1, State: "ok"})
		}
		require.NoError(t, s.WriteExpectations(ctx, wide))
		q := storage.CoverageQuery{Tenant: "wide", From: Base, To: Base.Add(time.Duration(steps) * time.Second), Step: time.Second}
		require.NoError(t, q.Validate())
		got := coverage(q)
		require.Len(t, got, sources)
		for k, b := range got {
			require.Equal(t, storage.SourceBand{Source: fmt.Sprintf("s%03d", k), Band: storage.Band{I: int64(k) * 60, Expected: 1, Upper: 2, Observed: 1, Buckets: 1}}, b)
		}
		q.To = q.To.Add(time.Second)
		require.NoError(t, q.Validate())
		_, err := s.Coverage(ctx, q)
		require.True(t, errors.Is(err, storage.ErrBadQuery), "%d sources × %d steps: %v", sources, steps+1, err)
		require.ErrorContains(t, err, "narrow the range or widen the step")
	})

	t.Run("bad queries", func(t *testing.T) {
		for _, q := range []storage.RateQuery{
			{Tenant: "acme", Source: "firewall", From: Base, To: Base.Add(time.Hour)},                                // no step
			{Tenant: "acme", Source: "firewall", From: Base, To: Base, Step: time.Minute},                            // empty range
			{Tenant: "acme", Source: "firewall", From: Base, To: Base.Add(-time.Hour), Step: time.Minute},            // backwards
			{Tenant: "acme", Source: "firewall", From: Base, To: Base.Add(time.Hour), Step: 1500 * time.Millisecond}, // fractional step
			{Tenant: "acme", Source: "firewall", From: Base, To: Base.Add(9000 * time.Hour), Step: time.Second},      // too many points
			{Tenant: "", Source: "firewall", From: Base, To: Base.Add(time.Hour), Step: time.Minute},                 // no tenant
			{Tenant: "acme", Source: "", From: Base, To: Base.Add(time.Hour), Step: time.Minute},                     // no source
			{Tenant: "acme", Source: "firewall", Clock: 7, From: Base, To: Base.Add(time.Hour), Step: time.Minute},   // no such clock
			{Tenant: "acme", Source: "firewall", Clock: storage.Event, From: Base, To: Base},                         // validated before the clock
		} {
			got, err := s.Bands(ctx, q)
			require.True(t, errors.Is(err, storage.ErrBadQuery), "%+v: %v", q, err)
			require.Nil(t, got)
		}
		for _, q := range []storage.CoverageQuery{
			{Tenant: "acme", From: Base, To: Base.Add(time.Hour)},
			{Tenant: "acme", From: Base, To: Base, Step: time.Minute},
			{Tenant: "acme", From: Base, To: Base.Add(-time.Hour), Step: time.Minute},
			{Tenant: "acme", From: Base, To: Base.Add(time.Hour), Step: 1500 * time.Millisecond},
			{Tenant: "acme", From: Base, To: Base.Add(9000 * time.Hour), Step: time.Second},
			{Tenant: "", From: Base, To: Base.Add(time.Hour), Step: time.Minute},
		} {
			got, err := s.Coverage(ctx, q)
			require.True(t, errors.Is(err, storage.ErrBadQuery), "%+v: %v", q, err)
			require.Nil(t, got)
		}
	})

	// Names are data: no tenant's or source's rows leak into another's answer.
	t.Run("hostile names", func(t *testing.T) {
		for _, tenant := range Tenants {
			got := coverage(storage.CoverageQuery{Tenant: tenant, From: Base.Add(-time.Hour), To: Base.Add(3 * time.Hour), Step: 4 * time.Hour})
			var n uint32
			for _, b := range got {
				n += b.Buckets
			}
			want := 0
			for _, x := range xs {
				if x.Tenant == tenant {
					want++
				}
			}
			require.Equal(t, uint32(want), n, "tenant %q", tenant)
		}
	})
}
