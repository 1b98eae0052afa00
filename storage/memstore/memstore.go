// Package memstore is an in-memory store for the all-in-one `gapwatch demo`. It
// answers queries exactly as the ClickHouse store does for the same batches, and
// keeps only a bounded window of buckets behind the newest one it has seen.
package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gapwatch/gapwatch/storage"
)

type stream struct{ tenant, source string }

type slot struct {
	clock  storage.Clock
	bucket int64
}

// tally is one stream's count in one slot, with its lateness histogram.
type tally struct {
	events  uint64
	first   int64 // the earliest Count.Arrival written
	late    [storage.LatenessBuckets]uint64
	arrived map[int64]uint64 // Event clock: events by their row's arrival second (Count.Arrival)
}

type partition struct {
	topic string
	part  int32
}

// Store keeps counts in maps under one lock. The zero value is not usable; call New.
type Store struct {
	retention time.Duration

	mu      sync.RWMutex
	counts  map[stream]map[slot]*tally
	offsets map[partition]storage.Offset
	newest  int64 // newest bucket start seen, Unix seconds
	evicted int64 // newest at the last eviction pass

	alerts   []storedAlert
	progress map[shardID]storage.DetectProgress
	silences map[string]storage.Silence

	expectations map[stream]map[int64]expectation // by bucket start
}

// expectation is one stream's stored expectation in one bucket.
type expectation struct {
	expected, lower, upper float64
	observed               uint64
}

// New returns a store that forgets buckets older than retention behind the newest
// bucket written (default 24h when retention is 0).
func New(retention time.Duration) *Store {
	if retention <= 0 {
		retention = 24 * time.Hour
	}
	return &Store{retention: retention, counts: map[stream]map[slot]*tally{}, offsets: map[partition]storage.Offset{},
		progress: map[shardID]storage.DetectProgress{}, expectations: map[stream]map[int64]expectation{}}
}

// Write adds a batch atomically.
func (s *Store) Write(_ context.Context, b storage.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range b.Counts {
		st := stream{c.Tenant, c.Source}
		m := s.counts[st]
		if m == nil {
			m = map[slot]*tally{}
			s.counts[st] = m
		}
		t := m[slot{c.Clock, c.Bucket}]
		if t == nil {
			t = &tally{first: c.Arrival}
			m[slot{c.Clock, c.Bucket}] = t
		}
		t.events += c.Events
		t.first = min(t.first, c.Arrival)
		if c.Clock == storage.Event {
			if t.arrived == nil {
				t.arrived = map[int64]uint64{}
			}
			t.arrived[c.Arrival] += c.Events
		}
		for i, n := range c.Lateness[:min(len(c.Lateness), storage.LatenessBuckets)] {
			t.late[i] += n
		}
		if c.Bucket > s.newest {
			s.newest = c.Bucket
		}
	}
	for _, o := range b.Offsets { // as ClickHouse: the highest offset and the highest watermark
		p := partition{o.Topic, o.Partition}
		if cur, ok := s.offsets[p]; ok {
			o.Next = max(o.Next, cur.Next)
			if cur.ArrivalHW.After(o.ArrivalHW) {
				o.ArrivalHW = cur.ArrivalHW
			}
		}
		s.offsets[p] = o
	}
	s.evictLocked()
	return nil
}

// evictLocked drops buckets (counts and expectations) behind the retention
// window, at most once per minute of progress so that a write stays cheap.
func (s *Store) evictLocked() {
	if s.newest-s.evicted < 60 {
		return
	}
	s.evicted = s.newest
	cutoff := s.newest - int64(s.retention/time.Second)
	for st, m := range s.counts {
		for k := range m {
			if k.bucket < cutoff {
				delete(m, k)
			}
		}
		if len(m) == 0 {
			delete(s.counts, st)
		}
	}
	for st, m := range s.expectations {
		for b := range m {
			if b < cutoff {
				delete(m, b)
			}
		}
		if len(m) == 0 {
			delete(s.expectations, st)
		}
	}
}

// Offsets returns the progress of every partition of topic.
func (s *Store) Offsets(_ context.Context, topic string) (map[int32]storage.Offset, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[int32]storage.Offset{}
	for p, o := range s.offsets {
		if p.topic == topic {
			out[p.part] = o
		}
	}
	return out, nil
}

// Rates answers q from the counts held.
func (s *Store) Rates(_ context.Context, q storage.RateQuery) ([]storage.Point, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	start, n := q.Steps()
	step := int64(q.Step / time.Second)
	end := start + int64(n)*step
	sums := map[int64]uint64{}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for k, v := range s.counts[stream{q.Tenant, q.Source}] {
		if k.clock == q.Clock && k.bucket >= start && k.bucket < end {
			sums[(k.bucket-start)/step] += v.events
		}
	}
	return storage.FillPoints(q, sums), nil
}

// BucketCounts returns every stream's events per bucket of clock in [from, to).
func (s *Store) BucketCounts(_ context.Context, clock storage.Clock, from, to time.Time) ([]storage.StreamCount, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []storage.StreamCount
	for st, m := range s.counts {
		for k, v := range m {
			if k.clock == clock && k.bucket >= from.Unix() && k.bucket < to.Unix() {
				out = append(out, storage.StreamCount{Tenant: st.tenant, Source: st.source, Bucket: k.bucket, Events: v.events, Lateness: v.late,
					First: v.first})
			}
		}
	}
	return out, nil
}

// StreamBucketCounts is BucketCounts of one stream, by bucket, as the
// ClickHouse store's.
func (s *Store) StreamBucketCounts(_ context.Context, clock storage.Clock, tenant, source string, from, to time.Time) ([]storage.StreamCount, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []storage.StreamCount
	for k, v := range s.counts[stream{tenant, source}] {
		if k.clock == clock && k.bucket >= from.Unix() && k.bucket < to.Unix() {
			out = append(out, storage.StreamCount{Tenant: tenant, Source: source, Bucket: k.bucket, Events: v.events, Lateness: v.late, First: v.first})
		}
	}
	slices.SortFunc(out, func(a, b storage.StreamCount) int { return cmp.Compare(a.Bucket, b.Bucket) })
	return out, nil
}

// Arrived answers q from the counts held, as the ClickHouse store does.
func (s *Store) Arrived(_ context.Context, q storage.ArrivedQuery) ([]storage.Arrived, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	type key struct {
		stream
		bucket, arrival int64
	}
	sums := map[key]uint64{}
	s.mu.RLock()
	for _, sp := range q.Spans {
		st := stream{sp.Tenant, sp.Source}
		for k, v := range s.counts[st] {
			if k.clock != storage.Event || k.bucket < sp.From || k.bucket >= sp.To {
				continue
			}
			for at, n := range v.arrived {
				if at >= q.ArrivedFrom && at < q.ArrivedTo {
					sums[key{st, k.bucket, at}] = n // overlapping spans count a row once
				}
			}
		}
	}
	s.mu.RUnlock()
	out := make([]storage.Arrived, 0, len(sums))
	for k, n := range sums {
		out = append(out, storage.Arrived{Tenant: k.tenant, Source: k.source, Bucket: k.bucket, Arrival: k.arrival, Events: n})
	}
	return out, nil
}

// WriteExpectations stores xs atomically. A row for a stream and bucket
// already held replaces it (a restarted detector writes the same rows again).
// Like counts, expectations move the retention window and are forgotten
// behind it.
func (s *Store) WriteExpectations(_ context.Context, xs []storage.Expectation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range xs {
		st := stream{x.Tenant, x.Source}
		m := s.expectations[st]
		if m == nil {
			m = map[int64]expectation{}
			s.expectations[st] = m
		}
		m[x.Bucket] = expectation{expected: x.Expected, lower: x.Lower, upper: x.Upper, observed: x.Observed}
		if x.Bucket > s.newest {
			s.newest = x.Bucket
		}
	}
	s.evictLocked()
	return nil
}

// bandsLocked sums the expectations of m in the steps of q, sorted by step.
func bandsLocked(m map[int64]expectation, q storage.RateQuery) []storage.Band {
	start, n := q.Steps()
	step := int64(q.Step / time.Second)
	end := start + int64(n)*step
	byStep := map[int64]*storage.Band{}
	for b, x := range m {
		if b < start || b >= end {
			continue
		}
		i := (b - start) / step
		band := byStep[i]
		if band == nil {
			band = &storage.Band{I: i}
			byStep[i] = band
		}
		band.Expected += x.expected
		band.Lower += x.lower
		band.Upper += x.upper
		band.Observed += x.observed
		band.Buckets++
	}
	if len(byStep) == 0 {
		return nil
	}
	out := make([]storage.Band, 0, len(byStep))
	for _, b := range byStep {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b storage.Band) int { return cmp.Compare(a.I, b.I) })
	return out
}

// Bands returns q's stream's expectations summed per step of q, for the steps
// that have any, as the ClickHouse store does; none for the event clock.
func (s *Store) Bands(_ context.Context, q storage.RateQuery) ([]storage.Band, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if q.Clock != storage.Arrival {
		return nil, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return bandsLocked(s.expectations[stream{q.Tenant, q.Source}], q), nil
}

// Coverage returns the bands of every source of q.Tenant with expectations in
// the steps of q, sorted by source then step, as the ClickHouse store does:
// more than storage.MaxCoverageCells sources × steps is refused.
func (s *Store) Coverage(_ context.Context, q storage.CoverageQuery) ([]storage.SourceBand, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	rq := q.Rate("")
	_, steps := rq.Steps()
	s.mu.RLock()
	bySource := map[string][]storage.Band{}
	for st, m := range s.expectations {
		if st.tenant != q.Tenant {
			continue
		}
		if bands := bandsLocked(m, rq); len(bands) > 0 {
			bySource[st.source] = bands
		}
	}
	s.mu.RUnlock()
	if len(bySource)*steps > storage.MaxCoverageCells {
		return nil, fmt.Errorf("%w: coverage of %d sources × %d steps is more than %d cells: narrow the range or widen the step",
			storage.ErrBadQuery, len(bySource), steps, storage.MaxCoverageCells)
	}
	sources := make([]string, 0, len(bySource))
	for src := range bySource {
		sources = append(sources, src)
	}
	slices.SortFunc(sources, strings.Compare)
	start, n := rq.Steps()
	step := int64(q.Step / time.Second)
	end := start + int64(n)*step
	var out []storage.SourceBand
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, src := range sources {
		// Received: event-clock events in the buckets with an expectation.
		received := map[int64]uint64{}
		xs := s.expectations[stream{q.Tenant, src}]
		for k, v := range s.counts[stream{q.Tenant, src}] {
			if _, ok := xs[k.bucket]; ok && k.clock == storage.Event && k.bucket >= start && k.bucket < end {
				received[(k.bucket-start)/step] += v.events
			}
		}
		for _, b := range bySource[src] {
			out = append(out, storage.SourceBand{Source: src, Band: b, Received: received[b.I]})
		}
	}
	return out, nil
}

// Ping always succeeds.
func (s *Store) Ping(context.Context) error { return nil }

// Close releases nothing.
func (s *Store) Close() error { return nil }

// StreamNames returns the streams with counts held, sorted by tenant then
// source, at most q.Max() of them, and whether there were more.
func (s *Store) StreamNames(_ context.Context, q storage.StreamQuery) ([]storage.StreamName, bool, error) {
	if err := q.Validate(); err != nil {
		return nil, false, err
	}
	s.mu.RLock()
	out := []storage.StreamName{}
	for st, m := range s.counts {
		if len(m) > 0 && (q.Tenant == "" || st.tenant == q.Tenant) && st.tenant != "" {
			out = append(out, storage.StreamName{Tenant: st.tenant, Source: st.source})
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b storage.StreamName) int {
		return cmp.Or(strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.Source, b.Source))
	})
	if len(out) > q.Max() {
		return out[:q.Max()], true, nil
	}
	return out, false, nil
}
