package ingest

import (
	"cmp"
	"slices"

	"github.com/gapwatch/gapwatch/storage"
)

// Take returns everything applied since the last Take — the counts as one batch,
// and the dead letters — and wakes waiting Apply calls. The batch's offsets carry
// each partition's latest progress. It takes every lane: for a process with
// one flusher (tests and tools); flushers of lanes call TakeLane.
func (c *Counter) Take() (storage.Batch, []DeadLetter) {
	var all [counterLanes]int
	for l := range all {
		all[l] = l
	}
	return c.take(all[:])
}

// TakeLane is Take for the shards of one lane: what its partitions applied
// since the lane's last Take. Only one goroutine (the lane's flusher) calls it.
func (c *Counter) TakeLane(lane int) (storage.Batch, []DeadLetter) {
	return c.take([]int{lane})
}

func (c *Counter) take(lanes []int) (storage.Batch, []DeadLetter) {
	// Before any shard is taken: whatever a shard applies from now on is
	// marked as the lane's next Take's (see Streams.sweep).
	for _, l := range lanes {
		c.streams.started[l].Add(1)
	}
	defer func() {
		for _, l := range lanes {
			c.streams.completed[l].Add(1)
		}
	}()
	var (
		taken   [counterShards]*cells
		offsets []storage.Offset
		dead    []DeadLetter
		cells   int
	)
	for i := range c.shards {
		if !slices.Contains(lanes, i%counterLanes) {
			continue
		}
		sh, ln := &c.shards[i], &c.lanes[i%counterLanes]
		sh.mu.Lock()
		cur := sh.cur
		if sh.cur = sh.spare; sh.cur == nil {
			sh.cur = newCells()
		}
		sh.spare = nil
		sh.taken++
		for _, o := range sh.offsets {
			offsets = append(offsets, o)
		}
		clear(sh.offsets)
		dead = append(dead, sh.dead...)
		c.deadBytes.Add(-int64(sh.deadBytes))
		sh.dead, sh.deadBytes = nil, 0
		ln.pending.Add(-int64(cur.len()))
		sh.mu.Unlock()
		taken[i] = cur
		cells += cur.len()
	}
	for _, l := range lanes {
		c.lanes[l].fullSent.Store(false)
	}
	c.mu.Lock()
	c.taken.Broadcast()
	c.mu.Unlock()

	// The ids in the taken cells stay valid until this Take completes (see Streams.sweep).
	b := storage.Batch{Counts: make([]storage.Count, 0, cells), Offsets: offsets}
	var (
		arrival [counterShards][]arrivalCell
		event   [counterShards][]eventCell
	)
	for i, cur := range taken {
		if cur != nil {
			arrival[i], event[i] = cur.arrival, cur.event
		}
	}
	// One allocation for every histogram, without their trailing zeros (most
	// events fall in the first classes; cells merged from several shards need
	// no more than their sum).
	slab := make([]uint64, histsLen(&arrival)+histsLen(&event))

	// The counts go out sorted by (tenant, source, clock, bucket): see
	// streamOrder, whose buffers are reused from Take to Take.
	o := &c.streams.orders[lanes[0]]
	o.mu.Lock()
	touched := o.touched[:0]
	for i := range taken {
		touched = appendStreams(appendStreams(touched, arrival[i]), event[i])
	}
	o.touched = touched
	rank := o.update(c.streams, touched)
	refs := o.refs[:0]
	for i := range taken {
		refs = appendRefs(refs, arrival[i], rank, storage.Arrival, i)
		refs = appendRefs(refs, event[i], rank, storage.Event, i)
	}
	o.refs = refs
	o.sorted, o.start = sortCells(refs, len(o.keys), o.sorted, o.start)
	// A stream whose events came through partitions of several shards has a
	// cell of the same key in each: they are adjacent now, and become one
	// count (summed into the first: the taken cells are dropped after this).
	for lo := 0; lo < len(o.sorted); {
		hi := lo + 1
		for hi < len(o.sorted) && sameCell(&o.sorted[hi], &o.sorted[lo]) {
			hi++
		}
		if same := o.sorted[lo:hi]; same[0].clock == storage.Arrival {
			b.Counts, slab = appendCount(b.Counts, c.streams, &arrival, same, slab)
		} else {
			b.Counts, slab = appendCount(b.Counts, c.streams, &event, same, slab)
		}
		lo = hi
	}
	o.mu.Unlock()

	for i, cur := range taken {
		if cur == nil {
			continue
		}
		clear(cur.arrivalIdx)
		clear(cur.eventIdx)
		cur.arrival, cur.event = cur.arrival[:0], cur.event[:0]
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.spare = cur
		sh.mu.Unlock()
	}
	return b, dead
}

// sameCell reports whether a and b count the same stream, clock and bucket.
func sameCell(a, b *cellRef) bool {
	return a.rank == b.rank && a.clock == b.clock && a.bucket == b.bucket
}

// cellRef is one pending cell in Take's sort: its stream's rank, clock and
// bucket, and its index in the clock's cells.
type cellRef struct {
	rank   int32
	clock  storage.Clock
	shard  uint8
	bucket int64
	i      int32
}

// sortCells sorts refs by (rank, clock, bucket) with ranks below ranked: a
// counting sort by rank (linear: a comparison sort of a flush's 100 k cells
// took back much of what ClickHouse saves), then a sort of each stream's
// cells, usually a few.
//
// out and start are buffers to reuse; it returns them (grown if need be),
// out holding the sorted cells.
func sortCells(refs []cellRef, ranked int, out []cellRef, start []int32) ([]cellRef, []int32) {
	start = slices.Grow(start[:0], ranked+1)[:ranked+1]
	clear(start)
	for _, r := range refs {
		start[r.rank+1]++
	}
	for i := 1; i <= ranked; i++ {
		start[i] += start[i-1]
	}
	out = slices.Grow(out[:0], len(refs))[:len(refs)]
	for _, r := range refs {
		out[start[r.rank]] = r
		start[r.rank]++
	}
	for lo := 0; lo < len(out); {
		hi := lo + 1
		for hi < len(out) && out[hi].rank == out[lo].rank {
			hi++
		}
		if g := out[lo:hi]; len(g) <= 12 {
			for i := 1; i < len(g); i++ {
				for j := i; j > 0 && cellBefore(&g[j], &g[j-1]); j-- {
					g[j], g[j-1] = g[j-1], g[j]
				}
			}
		} else { // a stream with many buckets in one flush (catching up)
			slices.SortFunc(g, func(a, b cellRef) int {
				return cmp.Or(cmp.Compare(a.clock, b.clock), cmp.Compare(a.bucket, b.bucket))
			})
		}
		lo = hi
	}
	return out, start
}

// cellBefore orders one stream's cells by clock, then bucket.
func cellBefore(a, b *cellRef) bool {
	return a.clock < b.clock || a.clock == b.clock && a.bucket < b.bucket
}

// takenCell is a pointer to a cell type, as Take handles cells of either
// clock.
type takenCell[C any] interface {
	cellPtr[C]
	// add merges another cell of the same stream, clock and bucket into this one.
	add(*C)
	// histLen is the length of the cell's lateness histogram without its
	// trailing zeros (0 for a clock without one).
	histLen() int
	// count is the cell as a stored count; its histogram, if any, is cut
	// from the front of slab, and the rest of slab returned.
	count(tenant, source string, slab []uint64) (storage.Count, []uint64)
}

func (x *arrivalCell) add(y *arrivalCell) {
	x.events += y.events
	x.arrival = min(x.arrival, y.arrival)
	for j := range x.lateness {
		x.lateness[j] += y.lateness[j]
	}
}

func (x *eventCell) add(y *eventCell) {
	x.events += y.events
	x.arrival = max(x.arrival, y.arrival)
}

func (x *arrivalCell) histLen() int { return histLen(&x.lateness) }
func (x *eventCell) histLen() int   { return 0 }

func (x *arrivalCell) count(tenant, source string, slab []uint64) (storage.Count, []uint64) {
	n := histLen(&x.lateness)
	lat := slab[:n:n]
	for j := range lat {
		lat[j] = uint64(x.lateness[j])
	}
	return storage.Count{Tenant: tenant, Source: source, Clock: storage.Arrival,
		Bucket: x.bucket, Events: uint64(x.events), Lateness: lat, Arrival: int64(x.arrival)}, slab[n:]
}

func (x *eventCell) count(tenant, source string, slab []uint64) (storage.Count, []uint64) {
	return storage.Count{Tenant: tenant, Source: source, Clock: storage.Event,
		Bucket: x.bucket, Events: uint64(x.events), Arrival: int64(x.arrival)}, slab
}

// histsLen is the total length of the taken cells' histograms.
func histsLen[C any, P takenCell[C]](taken *[counterShards][]C) int {
	n := 0
	for _, cs := range taken {
		for i := range cs {
			n += P(&cs[i]).histLen()
		}
	}
	return n
}

// appendStreams appends the stream of every cell of cs to ids.
func appendStreams[C any, P takenCell[C]](ids []uint32, cs []C) []uint32 {
	for i := range cs {
		ids = append(ids, P(&cs[i]).head().stream)
	}
	return ids
}

// appendRefs appends a cellRef for every cell of cs, shard's cells of clock.
func appendRefs[C any, P takenCell[C]](refs []cellRef, cs []C, rank []int32, clock storage.Clock, shard int) []cellRef {
	for i := range cs {
		h := P(&cs[i]).head()
		refs = append(refs, cellRef{rank: rank[h.stream], clock: clock, shard: uint8(shard), bucket: h.bucket, i: int32(i)})
	}
	return refs
}

// appendCount appends the count of the cells same refers to (one key, in
// one or more shards' cells of taken), summed into the first of them, and
// returns the rest of slab (see takenCell.count).
func appendCount[C any, P takenCell[C]](counts []storage.Count, s *Streams, taken *[counterShards][]C, same []cellRef, slab []uint64) ([]storage.Count, []uint64) {
	x := P(&taken[same[0].shard][same[0].i])
	for _, q := range same[1:] {
		x.add(&taken[q.shard][q.i])
	}
	tenant, source := s.name(x.head().stream)
	n, slab := x.count(tenant, source, slab)
	return append(counts, n), slab
}

// histLen is the length of h without its trailing zeros.
func histLen(h *[storage.LatenessBuckets]uint32) int {
	n := len(h)
	for n > 0 && h[n-1] == 0 {
		n--
	}
	return n
}
