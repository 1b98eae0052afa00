package ingest

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gapwatch/gapwatch/storage"
)

// Limits bound what one ingest process holds in memory, whatever the input.
type Limits struct {
	MaxStreams          int `yaml:"max_streams"`            // distinct (tenant, source) streams counted; default 100000
	MaxStreamsPerTenant int `yaml:"max_streams_per_tenant"` // default 10000
	MaxPendingCells     int `yaml:"max_pending_cells"`      // counts held between flushes before consumers wait; default 500000
	MaxPendingDLQBytes  int `yaml:"max_pending_dlq_bytes"`  // dead letters held between flushes before consumers wait; default 32 MiB
	// StreamIdle is how long (in arrival time) a stream may send nothing and still
	// count towards the caps; idle streams are forgotten when the caps are reached. Default 1h.
	StreamIdle time.Duration `yaml:"stream_idle"`
}

// WithDefaults fills unset limits.
func (l Limits) WithDefaults() Limits {
	if l.MaxStreams == 0 {
		l.MaxStreams = 100_000
	}
	if l.MaxStreamsPerTenant == 0 {
		l.MaxStreamsPerTenant = 10_000
	}
	if l.MaxPendingCells == 0 {
		l.MaxPendingCells = 500_000
	}
	if l.MaxPendingDLQBytes == 0 {
		l.MaxPendingDLQBytes = 32 << 20
	}
	if l.StreamIdle == 0 {
		l.StreamIdle = time.Hour
	}
	return l
}

// ErrClosed is returned by Counter.Apply once the counter is closed.
var ErrClosed = errors.New("counter closed")

// Streams admits new streams up to the configured caps and gives each a small
// id for the counter's keys. It lives as long as the process, across
// consumer-group generations. A stream with no events for Limits.StreamIdle of
// arrival time stops counting towards the caps: it is forgotten when the caps
// are reached and a new stream asks to be admitted. Safe for concurrent use.
type Streams struct {
	max, perTenant int
	idle           int64 // seconds of arrival time

	mu       sync.RWMutex
	ids      map[string]uint32 // tenant \x00 source
	entries  []streamEntry     // by id
	free     []uint32          // ids of forgotten streams, for reuse
	byTenant map[string]int
	newest   atomic.Int64 // newest arrival bucket seen
	swept    int64        // newest at the last sweep
	// epoch counts the Takes of the counter (one at a time: a generation's)
	// using the registry.
	epoch atomic.Int64
	order streamOrder // for Take; under mu (read) and its own lock
}

type streamEntry struct {
	tenant, source string
	key            string       // tenant \x00 source; "" once forgotten
	last           atomic.Int64 // newest arrival bucket with events
	epoch          atomic.Int64 // Streams.epoch at its last event
}

// NewStreams returns an empty registry with the caps of l.
func NewStreams(l Limits) *Streams {
	l = l.WithDefaults()
	return &Streams{max: l.MaxStreams, perTenant: l.MaxStreamsPerTenant, idle: int64(l.StreamIdle / time.Second),
		ids: map[string]uint32{}, byTenant: map[string]int{}}
}

// Len returns the number of admitted streams.
func (s *Streams) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.ids)
}

// id returns the id of the stream key (tenant \x00 source), admitting it if it
// is new and the caps allow; ok is false when they do not. bucket is the
// arrival bucket of the event: it marks the stream as in use.
func (s *Streams) id(key []byte, tenantLen int, bucket int64) (id uint32, ok bool) {
	epoch := s.epoch.Load()
	s.mu.RLock()
	id, ok = s.ids[string(key)]
	if ok {
		s.touch(&s.entries[id], bucket, epoch)
	}
	s.mu.RUnlock()
	if ok {
		return id, true
	}
	return s.admit(key, tenantLen, bucket, epoch)
}

// touch marks e as in use; s.mu is held (read or write).
func (s *Streams) touch(e *streamEntry, bucket, epoch int64) {
	if e.last.Load() < bucket {
		e.last.Store(bucket) // racing stores of nearby buckets: either is fine
	}
	if e.epoch.Load() != epoch {
		e.epoch.Store(epoch)
	}
	if s.newest.Load() < bucket {
		s.newest.Store(bucket)
	}
}

func (s *Streams) admit(key []byte, tenantLen int, bucket, epoch int64) (uint32, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.ids[string(key)]; ok { // admitted meanwhile
		s.touch(&s.entries[id], bucket, epoch)
		return id, true
	}
	if s.newest.Load() < bucket {
		s.newest.Store(bucket)
	}
	tenant := key[:tenantLen]
	if len(s.ids) >= s.max || s.byTenant[string(tenant)] >= s.perTenant {
		s.sweep(epoch)
		if len(s.ids) >= s.max || s.byTenant[string(tenant)] >= s.perTenant {
			return 0, false
		}
	}
	var id uint32
	if n := len(s.free); n > 0 {
		id, s.free = s.free[n-1], s.free[:n-1]
	} else {
		id = uint32(len(s.entries))
		s.entries = append(s.entries, streamEntry{})
	}
	e := &s.entries[id]
	e.key = string(key)
	e.tenant, e.source = e.key[:tenantLen], e.key[tenantLen+1:]
	e.last.Store(bucket)
	e.epoch.Store(epoch)
	s.ids[e.key] = id
	s.byTenant[e.tenant]++
	return id, true
}

// sweep forgets the streams idle for StreamIdle, at most once per minute of
// arrival time; s.mu is held. A stream used since the Take before last is
// never forgotten: its id may still be pending or in a batch being built.
func (s *Streams) sweep(epoch int64) {
	newest := s.newest.Load()
	if newest < s.swept+60 {
		return
	}
	s.swept = newest
	for id := range s.entries {
		e := &s.entries[id]
		if e.key == "" || e.last.Load() > newest-s.idle || e.epoch.Load() >= epoch-1 {
			continue
		}
		delete(s.ids, e.key)
		if s.byTenant[e.tenant]--; s.byTenant[e.tenant] == 0 {
			delete(s.byTenant, e.tenant)
		}
		e.key, e.tenant, e.source = "", "", ""
		s.free = append(s.free, uint32(id))
	}
}

// name returns the tenant and source of id; s.mu is held (read).
func (s *Streams) name(id uint32) (tenant, source string) {
	e := &s.entries[id]
	return e.tenant, e.source
}

// Staged holds the events decoded from one message until Counter.Apply counts
// them all at once together with the message's offset. Reused per partition.
type Staged struct {
	buf     []byte
	events  []stagedEvent
	rejects []rejection
}

type rejection struct {
	reason Reason
	detail string
}

type stagedEvent struct {
	tenantEnd, sourceEnd int // ends in buf; each starts where the previous ends
	time                 time.Time
}

// Reset empties s for the next message.
func (s *Staged) Reset() { s.buf, s.events, s.rejects = s.buf[:0], s.events[:0], s.rejects[:0] }

// Reject records that a record of the message (or the whole message) is not counted.
func (s *Staged) Reject(reason Reason, detail string) {
	s.rejects = append(s.rejects, rejection{reason, detail})
}

// Add copies ev into s.
func (s *Staged) Add(ev Event) {
	s.buf = append(s.buf, ev.Tenant...)
	t := len(s.buf)
	s.buf = append(s.buf, ev.Source...)
	s.events = append(s.events, stagedEvent{tenantEnd: t, sourceEnd: len(s.buf), time: ev.Time})
}

// sameStream reports whether staged events i and j are of the same stream.
func (s *Staged) sameStream(i, j int) bool {
	ti, si, _ := s.at(i)
	tj, sj, _ := s.at(j)
	return bytes.Equal(ti, tj) && bytes.Equal(si, sj)
}

// Len returns the number of staged events.
func (s *Staged) Len() int { return len(s.events) }

func (s *Staged) at(i int) (tenant, source []byte, t time.Time) {
	start := 0
	if i > 0 {
		start = s.events[i-1].sourceEnd
	}
	e := s.events[i]
	return s.buf[start:e.tenantEnd], s.buf[e.tenantEnd:e.sourceEnd], e.time
}

// cellKey names a pending count of one clock: a stream id and a bucket.
type cellKey struct {
	stream uint32
	bucket int64
}

// Cells count in uint32: one stream and bucket between two Takes (a quarter
// of max_pending_cells or one flush interval, seconds) is far from 2^32 events.
type arrivalCell struct {
	key      cellKey
	events   uint32
	arrival  uint32 // the earliest record timestamp among them, Unix seconds (as a DateTime)
	lateness [storage.LatenessBuckets]uint32
}

type eventCell struct {
	key     cellKey
	events  uint32
	arrival uint32 // the latest record timestamp among them: when they were all in
}

// cells are the counts pending between two Takes.
type cells struct {
	arrivalIdx map[cellKey]int32 // index into arrival
	arrival    []arrivalCell
	eventIdx   map[cellKey]int32 // index into event
	event      []eventCell
}

func newCells() *cells {
	return &cells{arrivalIdx: map[cellKey]int32{}, eventIdx: map[cellKey]int32{}}
}

func (x *cells) len() int { return len(x.arrival) + len(x.event) }

// slot caches, per stream id, the stream's last arrival and event cells of the
// current epoch: most events of a stream fall in the same buckets, and a slice
// index is far cheaper than a lookup in maps of 100 k cells.
type slot struct {
	epoch                int64
	arrivalAt, eventAt   int64 // buckets
	arrivalIdx, eventIdx int32
}

type topicPartition struct {
	topic     string
	partition int32
}

// Counter sums staged events per stream, bucket and clock, and remembers for
// each partition the offset up to which they are counted. Partition goroutines
// Apply; one flusher Takes. A message's events and its offset are applied under
// one lock, so a Take never splits a message. When MaxPendingCells counts are
// pending, Apply waits for the next Take: backpressure, never an unbounded map.
type Counter struct {
	width   int64 // bucket width in seconds
	streams *Streams
	max     int
	maxDead int

	mu        sync.Mutex
	taken     *sync.Cond
	closed    bool
	cur       *cells
	spare     *cells // emptied cells of the Take before last, reused
	slots     []slot // by stream id
	offsets   map[topicPartition]storage.Offset
	lag       map[topicPartition]int64 // records behind the high-water mark, after the last fetch
	caughtUp  chan struct{}            // signalled when the last partition catching up has caught up
	full      chan struct{}            // signalled once per Take when a quarter of MaxPendingCells is pending
	fullSent  bool
	dead      []DeadLetter
	deadBytes int
	key       []byte
}

// NewCounter returns a counter with buckets of width w.
func NewCounter(w time.Duration, streams *Streams, l Limits) *Counter {
	l = l.WithDefaults()
	c := &Counter{width: int64(w / time.Second), streams: streams, max: l.MaxPendingCells, maxDead: l.MaxPendingDLQBytes,
		cur: newCells(), offsets: map[topicPartition]storage.Offset{}, lag: map[topicPartition]int64{},
		caughtUp: make(chan struct{}, 1), full: make(chan struct{}, 1)}
	c.taken = sync.NewCond(&c.mu)
	return c
}

// Message is one consumed Kafka record as the counter sees it.
type Message struct {
	Topic     string
	Partition int32
	Offset    int64
	Arrival   time.Time // the record timestamp
	Key       []byte
	Value     []byte
}

// Apply counts the staged events of m and records m.Offset+1 as the partition's
// progress. Events of streams over the cardinality caps are refused: they join
// the staged rejections, and if there are any, m becomes one dead letter taken
// out together with the counts. It returns how many events were refused by the
// caps (the caller reports them). It blocks while the pending map or the dead
// letters are full and returns ErrClosed once the counter is closed.
func (c *Counter) Apply(m *Message, s *Staged) (refused int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for (c.cur.len()+2*s.Len() > c.max && c.cur.len() > 0 || c.deadBytes > c.maxDead) && !c.closed {
		c.taken.Wait()
	}
	if c.closed {
		return 0, ErrClosed
	}
	width := time.Duration(c.width) * time.Second
	arrivalBucket := storage.BucketStart(m.Arrival, width)
	arrivalSec := uint32(min(max(m.Arrival.Unix(), 0), math.MaxUint32))
	cur, epoch := c.cur, c.streams.epoch.Load()
	var (
		id   uint32
		have bool // id is the stream of event prev
		prev int
	)
	for i := range s.events {
		tenant, source, t := s.at(i)
		// Records of one message are often of one stream: look it up once.
		if !have || !s.sameStream(prev, i) {
			c.key = append(append(append(c.key[:0], tenant...), 0), source...)
			var ok bool
			if id, ok = c.streams.id(c.key, len(tenant), arrivalBucket); !ok {
				if refused == 0 {
					s.Reject(ReasonStreamLimit, fmt.Sprintf("stream %.64q/%.64q is new and the stream caps are reached", tenant, source))
				}
				refused++
				have = false
				continue
			}
			have, prev = true, i
		}
		if int(id) >= len(c.slots) {
			c.slots = append(c.slots, make([]slot, int(id)+1-len(c.slots))...)
		}
		sl := &c.slots[id]
		if sl.epoch != epoch {
			*sl = slot{epoch: epoch, arrivalIdx: -1, eventIdx: -1}
		}
		if sl.arrivalIdx < 0 || sl.arrivalAt != arrivalBucket {
			sl.arrivalAt, sl.arrivalIdx = arrivalBucket, cur.arrivalCell(cellKey{id, arrivalBucket})
		}
		a := &cur.arrival[sl.arrivalIdx]
		if a.events == 0 || arrivalSec < a.arrival {
			a.arrival = arrivalSec // the earliest: the bucket had events from then on
		}
		a.events++
		a.lateness[storage.LatenessBucket(m.Arrival.Sub(t))]++
		if eb := storage.BucketStart(t, width); sl.eventIdx < 0 || sl.eventAt != eb {
			sl.eventAt, sl.eventIdx = eb, cur.eventCell(cellKey{id, eb})
		}
		e := &cur.event[sl.eventIdx]
		e.events++
		e.arrival = max(e.arrival, arrivalSec)
	}
	if !c.fullSent && cur.len() >= c.max/4 {
		c.fullSent = true
		select {
		case c.full <- struct{}{}:
		default:
		}
	}
	if len(s.rejects) > 0 {
		dl := newDeadLetter(m, s.rejects, refused)
		c.dead = append(c.dead, dl)
		c.deadBytes += len(dl.Value) + len(dl.Key) + len(dl.Detail)
	}
	tp := topicPartition{m.Topic, m.Partition}
	o := c.offsets[tp]
	o.Topic, o.Partition, o.Next = m.Topic, m.Partition, m.Offset+1
	if m.Arrival.After(o.ArrivalHW) {
		o.ArrivalHW = m.Arrival.UTC().Truncate(time.Second)
	}
	c.offsets[tp] = o
	return refused, nil
}

// arrivalCell returns the index of k's arrival cell, adding it if new.
func (x *cells) arrivalCell(k cellKey) int32 {
	return cellIndex(x.arrivalIdx, &x.arrival, k, func() arrivalCell { return arrivalCell{key: k} })
}

// eventCell returns the index of k's event cell, adding it if new.
func (x *cells) eventCell(k cellKey) int32 {
	return cellIndex(x.eventIdx, &x.event, k, func() eventCell { return eventCell{key: k} })
}

// cellIndex returns the index in *cs of k's cell, appending fresh() if idx
// has none.
func cellIndex[C any](idx map[cellKey]int32, cs *[]C, k cellKey, fresh func() C) int32 {
	j, ok := idx[k]
	if !ok {
		j = int32(len(*cs))
		*cs = append(*cs, fresh())
		idx[k] = j
	}
	return j
}

// Idle records that partition has delivered everything before next and nothing
// since a while ago: its arrival watermark is now. This is the only place wall
// time enters the pipeline's clocks; a replay or a lagging partition is never
// idle, so its watermark stays driven by record timestamps.
func (c *Counter) Idle(topic string, partition int32, next int64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tp := topicPartition{topic, partition}
	o, ok := c.offsets[tp]
	if !ok {
		o = storage.Offset{Topic: topic, Partition: partition}
	}
	o.Next = max(o.Next, next)
	if now.After(o.ArrivalHW) {
		o.ArrivalHW = now.UTC().Truncate(time.Second)
	}
	c.offsets[tp] = o
}

// Take returns everything applied since the last Take — the counts as one batch,
// and the dead letters — and wakes waiting Apply calls. The batch's offsets carry
// each partition's latest progress. Only one goroutine (the flusher) calls Take.
func (c *Counter) Take() (storage.Batch, []DeadLetter) {
	c.mu.Lock()
	cur, offsets, dead := c.cur, c.offsets, c.dead
	next := c.spare
	if next == nil {
		next = newCells()
	}
	c.cur, c.spare, c.offsets, c.dead, c.deadBytes = next, nil, map[topicPartition]storage.Offset{}, nil, 0
	c.fullSent = false
	c.streams.epoch.Add(1)
	c.taken.Broadcast()
	c.mu.Unlock()

	// The ids in cur stay valid until the next Take (see Streams.sweep).
	b := storage.Batch{Counts: make([]storage.Count, 0, cur.len()), Offsets: make([]storage.Offset, 0, len(offsets))}
	// One allocation for every histogram, without their trailing zeros (most
	// events fall in the first classes).
	used := 0
	for i := range cur.arrival {
		used += histLen(&cur.arrival[i].lateness)
	}
	slab := make([]uint64, used)

	// The counts go out sorted by (tenant, source, clock, bucket): see
	// streamOrder, whose buffers are reused from Take to Take.
	c.streams.mu.RLock()
	o := &c.streams.order
	o.mu.Lock()
	touched := o.touched[:0]
	for i := range cur.arrival {
		touched = append(touched, cur.arrival[i].key.stream)
	}
	for i := range cur.event {
		touched = append(touched, cur.event[i].key.stream)
	}
	o.touched = touched
	rank := o.update(c.streams.entries, touched)
	refs := o.refs[:0]
	for i := range cur.arrival {
		k := cur.arrival[i].key
		refs = append(refs, cellRef{rank: rank[k.stream], clock: storage.Arrival, bucket: k.bucket, i: int32(i)})
	}
	for i := range cur.event {
		k := cur.event[i].key
		refs = append(refs, cellRef{rank: rank[k.stream], clock: storage.Event, bucket: k.bucket, i: int32(i)})
	}
	o.refs = refs
	o.sorted, o.start = sortCells(refs, len(o.keys), o.sorted, o.start)
	for _, r := range o.sorted {
		if r.clock == storage.Arrival {
			x := &cur.arrival[r.i]
			tenant, source := c.streams.name(x.key.stream)
			n := histLen(&x.lateness)
			lat := slab[:n:n]
			slab = slab[n:]
			for j := range lat {
				lat[j] = uint64(x.lateness[j])
			}
			b.Counts = append(b.Counts, storage.Count{Tenant: tenant, Source: source, Clock: storage.Arrival,
				Bucket: x.key.bucket, Events: uint64(x.events), Lateness: lat, Arrival: int64(x.arrival)})
			continue
		}
		x := &cur.event[r.i]
		tenant, source := c.streams.name(x.key.stream)
		b.Counts = append(b.Counts, storage.Count{Tenant: tenant, Source: source, Clock: storage.Event, Bucket: x.key.bucket, Events: uint64(x.events),
			Arrival: int64(x.arrival)})
	}
	o.mu.Unlock()
	c.streams.mu.RUnlock()
	for _, o := range offsets {
		b.Offsets = append(b.Offsets, o)
	}

	clear(cur.arrivalIdx)
	clear(cur.eventIdx)
	cur.arrival, cur.event = cur.arrival[:0], cur.event[:0]
	c.mu.Lock()
	c.spare = cur
	c.mu.Unlock()
	return b, dead
}

// cellRef is one pending cell in Take's sort: its stream's rank, clock and
// bucket, and its index in the clock's cells.
type cellRef struct {
	rank   int32
	clock  storage.Clock
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

// catchUpLag is the consumer lag, in records of one partition, from which
// ingest is catching up rather than following the live edge.
const catchUpLag = 10_000

// SetLag records how many records partition is behind its high-water mark.
// When that ends the catching up of every partition, CaughtUp is signalled.
func (c *Counter) SetLag(topic string, partition int32, lag int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tp := topicPartition{topic, partition}
	was := c.lag[tp] >= catchUpLag
	c.lag[tp] = lag
	if was && lag < catchUpLag && !c.catchingUp() {
		select {
		case c.caughtUp <- struct{}{}:
		default:
		}
	}
}

// CaughtUp is signalled when ingest has caught up with a backlog: the time to
// store what was read at once rather than at the next flush interval.
func (c *Counter) CaughtUp() <-chan struct{} { return c.caughtUp }

// Full is signalled (once per Take) when a quarter of MaxPendingCells is
// pending: writing then, not at the next interval, keeps batches — and the
// memory a write needs for them — bounded at any input rate.
func (c *Counter) Full() <-chan struct{} { return c.full }

// CatchingUp reports whether some partition is catchUpLag or more records
// behind: then writes can wait for more counts to merge (see flushLoop).
func (c *Counter) CatchingUp() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.catchingUp()
}

func (c *Counter) catchingUp() bool {
	for _, l := range c.lag {
		if l >= catchUpLag {
			return true
		}
	}
	return false
}

// histLen is the length of h without its trailing zeros.
func histLen(h *[storage.LatenessBuckets]uint32) int {
	n := len(h)
	for n > 0 && h[n-1] == 0 {
		n--
	}
	return n
}

// Pending returns the number of counts waiting for the next Take.
func (c *Counter) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur.len()
}

// Close makes pending and future Apply calls return ErrClosed.
func (c *Counter) Close() {
	c.mu.Lock()
	c.closed = true
	c.taken.Broadcast()
	c.mu.Unlock()
}
