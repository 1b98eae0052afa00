// Package storetest is the shared conformance test of gapwatch's stores: the
// in-memory and the ClickHouse store must give the same answers for the same
// batches, and both must equal a naive reference computed here.
package storetest

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/storage"
)

// Store is what the conformance test exercises.
type Store interface {
	Write(ctx context.Context, b storage.Batch) error
	Offsets(ctx context.Context, topic string) (map[int32]storage.Offset, error)
	Rates(ctx context.Context, q storage.RateQuery) ([]storage.Point, error)
	BucketCounts(ctx context.Context, clock storage.Clock, from, to time.Time) ([]storage.StreamCount, error)
	StreamBucketCounts(ctx context.Context, clock storage.Clock, tenant, source string, from, to time.Time) ([]storage.StreamCount, error)
	Arrived(ctx context.Context, q storage.ArrivedQuery) ([]storage.Arrived, error)
}

// Base is the time the conformance data starts at.
var Base = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// Tenants with hostile names: the stores must treat them as data.
var Tenants = []string{"acme", `x' OR '1'='1`, `back\slash`, "ünïcödé-租户", "semi;colon -- comment"}

// Batches returns the conformance input: several batches over the tenants, two
// clocks, minute buckets across two hours, repeated keys across batches, and
// offsets for two topics.
func Batches() []storage.Batch {
	var out []storage.Batch
	for b := range 4 {
		var batch storage.Batch
		for ti, tenant := range Tenants {
			for m := 0; m < 130; m += 1 + ti + b {
				bucket := Base.Add(time.Duration(m) * time.Minute).Unix()
				n := uint64(1 + (m*7+ti*3+b)%13)
				lat := make([]uint64, storage.LatenessBuckets)
				lat[m%storage.LatenessBuckets] = n
				batch.Counts = append(batch.Counts,
					storage.Count{Tenant: tenant, Source: "firewall", Clock: storage.Arrival, Bucket: bucket, Events: n, Lateness: lat,
						Arrival: bucket + int64((b*17+ti)%60)},
					storage.Count{Tenant: tenant, Source: "firewall", Clock: storage.Event, Bucket: bucket - 60, Events: n,
						Arrival: bucket + int64(60*(b%2)+ti)}, // batches 0 and 2 (1 and 3) arrive at the same second
					storage.Count{Tenant: tenant, Source: "SignInLogs", Clock: storage.Arrival, Bucket: bucket, Events: n * 2, Lateness: lat},
				)
			}
		}
		batch.Offsets = []storage.Offset{
			{Topic: "logs", Partition: int32(b % 3), Next: int64(100 * (b + 1)), ArrivalHW: Base.Add(time.Duration(b) * time.Minute)},
			{Topic: "other", Partition: 0, Next: int64(7 + b)},
		}
		out = append(out, batch)
	}
	return out
}

// reference answers q from batches by brute force.
func reference(batches []storage.Batch, q storage.RateQuery) []storage.Point {
	start, n := q.Steps()
	step := int64(q.Step / time.Second)
	pts := make([]storage.Point, n)
	for i := range pts {
		pts[i].T = time.Unix(start+int64(i)*step, 0).UTC()
	}
	for _, b := range batches {
		for _, c := range b.Counts {
			if c.Tenant == q.Tenant && c.Source == q.Source && c.Clock == q.Clock && c.Bucket >= start && c.Bucket < start+int64(n)*step {
				pts[(c.Bucket-start)/step].Events += c.Events
			}
		}
	}
	return pts
}

// Run writes Batches to s and checks every answer against the reference.
func Run(t *testing.T, s Store) {
	ctx := context.Background()
	batches := Batches()
	for _, b := range batches {
		require.NoError(t, s.Write(ctx, b))
	}
	require.NoError(t, s.Write(ctx, storage.Batch{}), "an empty batch is a no-op")

	t.Run("offsets", func(t *testing.T) {
		got, err := s.Offsets(ctx, "logs")
		require.NoError(t, err)
		require.Len(t, got, 3)
		require.Equal(t, int64(400), got[0].Next) // batches 0 and 3 wrote partition 0
		require.Equal(t, int64(200), got[1].Next)
		require.Equal(t, int64(300), got[2].Next)
		require.True(t, got[0].ArrivalHW.Equal(Base.Add(3*time.Minute)), "arrival watermark %v", got[0].ArrivalHW)
		other, err := s.Offsets(ctx, "other")
		require.NoError(t, err)
		require.Equal(t, map[int32]int64{0: 10}, map[int32]int64{0: other[0].Next})
		// An idle partition's progress: same offset, later watermark.
		require.NoError(t, s.Write(ctx, storage.Batch{Offsets: []storage.Offset{{Topic: "other", Partition: 0, Next: 10, ArrivalHW: Base.Add(time.Hour)}}}))
		other, err = s.Offsets(ctx, "other")
		require.NoError(t, err)
		require.Equal(t, int64(10), other[0].Next)
		require.True(t, other[0].ArrivalHW.Equal(Base.Add(time.Hour)), "watermark %v", other[0].ArrivalHW)
		none, err := s.Offsets(ctx, "never-written")
		require.NoError(t, err)
		require.Empty(t, none)
	})

	queries := []storage.RateQuery{}
	for _, tenant := range Tenants {
		queries = append(queries,
			storage.RateQuery{Tenant: tenant, Source: "firewall", Clock: storage.Arrival, From: Base, To: Base.Add(2 * time.Hour), Step: time.Minute},
			storage.RateQuery{Tenant: tenant, Source: "firewall", Clock: storage.Event, From: Base.Add(-time.Hour), To: Base.Add(3 * time.Hour), Step: 5 * time.Minute},
			storage.RateQuery{Tenant: tenant, Source: "SignInLogs", Clock: storage.Arrival, From: Base.Add(-2 * time.Hour), To: Base.Add(4 * time.Hour), Step: time.Hour},
			storage.RateQuery{Tenant: tenant, Source: "SignInLogs", Clock: storage.Arrival, From: Base.Add(17 * time.Minute), To: Base.Add(77 * time.Minute), Step: 10 * time.Minute},
		)
	}
	queries = append(queries,
		storage.RateQuery{Tenant: "acme", Source: "firewall", Clock: storage.Event, From: Base.Add(24 * time.Hour), To: Base.Add(25 * time.Hour), Step: time.Minute},
		storage.RateQuery{Tenant: "nobody", Source: "firewall", Clock: storage.Arrival, From: Base, To: Base.Add(time.Hour), Step: time.Minute},
		storage.RateQuery{Tenant: "acme", Source: "firewall", Clock: storage.Arrival, From: Base.Add(90 * time.Second), To: Base.Add(150 * time.Second), Step: time.Minute},
	)
	for _, q := range queries {
		t.Run("rates/"+q.Tenant+"/"+q.Source+"/"+q.Clock.String()+"/"+q.Step.String(), func(t *testing.T) {
			got, err := s.Rates(ctx, q)
			require.NoError(t, err)
			want := reference(batches, q)
			require.Equal(t, want, got)
			var total uint64
			for _, p := range got {
				total += p.Events
			}
			if q.Tenant != "nobody" && q.From.Before(Base.Add(2*time.Hour)) && q.To.After(Base.Add(2*time.Minute)) {
				require.NotZero(t, total, "the query covers written data")
			}
		})
	}

	t.Run("bucket counts", func(t *testing.T) {
		for _, clock := range []storage.Clock{storage.Arrival, storage.Event} {
			from, to := Base.Add(-time.Minute), Base.Add(30*time.Minute)
			want := map[storage.StreamCount]bool{}
			sums := map[storage.StreamCount]uint64{}
			late := map[[3]any]*[storage.LatenessBuckets]uint64{}
			first := map[[3]any]int64{}
			for _, b := range batches {
				for _, c := range b.Counts {
					if c.Clock == clock && c.Bucket >= from.Unix() && c.Bucket < to.Unix() {
						sums[storage.StreamCount{Tenant: c.Tenant, Source: c.Source, Bucket: c.Bucket}] += c.Events
						k := [3]any{c.Tenant, c.Source, c.Bucket}
						if late[k] == nil {
							late[k] = new([storage.LatenessBuckets]uint64)
						}
						for i, n := range c.Lateness {
							late[k][i] += n
						}
						if f, ok := first[k]; !ok || c.Arrival < f {
							first[k] = c.Arrival
						}
					}
				}
			}
			for k, n := range sums {
				k.Events = n
				k.Lateness = *late[[3]any{k.Tenant, k.Source, k.Bucket}]
				k.First = first[[3]any{k.Tenant, k.Source, k.Bucket}]
				want[k] = true
			}
			got, err := s.BucketCounts(ctx, clock, from, to)
			require.NoError(t, err)
			gotSet := map[storage.StreamCount]bool{}
			for _, c := range got {
				require.False(t, gotSet[c], "duplicate %+v", c)
				gotSet[c] = true
			}
			require.NotEmpty(t, want)
			require.Equal(t, want, gotSet, "clock %s", clock)
			firsts := 0
			for c := range gotSet {
				if c.First > c.Bucket {
					firsts++
				}
			}
			require.NotZero(t, firsts, "clock %s: the earliest arrival of the batches", clock)

			// One stream's: its rows of the above, by bucket (a hostile
			// tenant name is data; an unknown stream has none).
			byStream := map[[2]string][]storage.StreamCount{}
			for _, c := range got {
				byStream[[2]string{c.Tenant, c.Source}] = append(byStream[[2]string{c.Tenant, c.Source}], c)
			}
			require.Contains(t, byStream, [2]string{`x' OR '1'='1`, "firewall"})
			for k, want := range byStream {
				slices.SortFunc(want, func(a, b storage.StreamCount) int { return cmp.Compare(a.Bucket, b.Bucket) })
				one, err := s.StreamBucketCounts(ctx, clock, k[0], k[1], from, to)
				require.NoError(t, err)
				require.Equal(t, want, one, "clock %s, stream %q", clock, k)
			}
			none, err := s.StreamBucketCounts(ctx, clock, "acme", "nope", from, to)
			require.NoError(t, err)
			require.Empty(t, none)
		}
	})

	t.Run("arrived", func(t *testing.T) {
		spans := []storage.StreamSpan{
			{Tenant: "acme", Source: "firewall", From: Base.Unix(), To: Base.Add(40 * time.Minute).Unix()},
			{Tenant: "acme", Source: "firewall", From: Base.Add(30 * time.Minute).Unix(), To: Base.Add(50 * time.Minute).Unix()}, // overlaps: rows once
			{Tenant: `x' OR '1'='1`, Source: "firewall", From: Base.Add(-time.Hour).Unix(), To: Base.Add(time.Hour).Unix()},
			{Tenant: "acme", Source: "SignInLogs", From: Base.Unix(), To: Base.Add(time.Hour).Unix()}, // arrival clock only
		}
		q := storage.ArrivedQuery{Spans: spans, ArrivedFrom: Base.Add(10 * time.Minute).Unix(), ArrivedTo: Base.Add(45*time.Minute).Unix() + 1}
		want := map[storage.Arrived]bool{}
		sums := map[storage.Arrived]uint64{}
		for _, b := range batches {
			for _, c := range b.Counts {
				if c.Clock != storage.Event || c.Arrival < q.ArrivedFrom || c.Arrival >= q.ArrivedTo {
					continue
				}
				for _, sp := range spans {
					if c.Tenant == sp.Tenant && c.Source == sp.Source && c.Bucket >= sp.From && c.Bucket < sp.To {
						sums[storage.Arrived{Tenant: c.Tenant, Source: c.Source, Bucket: c.Bucket, Arrival: c.Arrival}] += c.Events
						break
					}
				}
			}
		}
		for k, n := range sums {
			k.Events = n
			want[k] = true
		}
		got, err := s.Arrived(ctx, q)
		require.NoError(t, err)
		gotSet := map[storage.Arrived]bool{}
		for _, a := range got {
			require.False(t, gotSet[a], "duplicate %+v", a)
			gotSet[a] = true
		}
		require.Greater(t, len(want), 10)
		require.Equal(t, want, gotSet)

		none, err := s.Arrived(ctx, storage.ArrivedQuery{ArrivedFrom: 0, ArrivedTo: 1 << 32})
		require.NoError(t, err)
		require.Empty(t, none)
		_, err = s.Arrived(ctx, storage.ArrivedQuery{Spans: spans, ArrivedFrom: 10, ArrivedTo: 5})
		require.True(t, errors.Is(err, storage.ErrBadQuery), "%v", err)
	})

	t.Run("bad queries", func(t *testing.T) {
		for _, q := range []storage.RateQuery{
			{Tenant: "acme", Source: "firewall", From: Base, To: Base.Add(time.Hour)},                                // no step
			{Tenant: "acme", Source: "firewall", From: Base, To: Base, Step: time.Minute},                            // empty range
			{Tenant: "acme", Source: "firewall", From: Base, To: Base.Add(time.Hour), Step: 1500 * time.Millisecond}, // fractional step
			{Tenant: "acme", Source: "firewall", From: Base, To: Base.Add(9000 * time.Hour), Step: time.Second},      // too many points
			{Tenant: "", Source: "firewall", From: Base, To: Base.Add(time.Hour), Step: time.Minute},                 // no tenant
		} {
			_, err := s.Rates(ctx, q)
			require.True(t, errors.Is(err, storage.ErrBadQuery), "%+v: %v", q, err)
		}
	})
}
