package ingest

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gapwatch/gapwatch/ingest/decode"
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
//
// Lookups go to one of registryParts maps by the key's hash, each with its own
// lock, so that an admission (which writes one map) stops only the lookups of
// that part: with one lock, every admission stopped every partition goroutine,
// and a busy process admits tens of thousands of streams when it starts.
type Streams struct {
	max, perTenant int
	idle           int64 // seconds of arrival time
	seed           maphash.Seed
	parts          [registryParts]registryPart

	// mu serialises admissions and sweeps; it guards the fields below and
	// every write to the parts' maps and to entries' names.
	mu       sync.Mutex
	admitted int
	// The entries by id, in chunks that never move: Counter.Take reads the
	// names of the ids it takes without a lock.
	chunks   []atomic.Pointer[[entryChunk]streamEntry]
	next     uint32   // ids handed out so far
	free     []uint32 // ids of forgotten streams, for reuse
	byTenant map[string]int
	newest   atomic.Int64 // newest arrival bucket seen
	swept    int64        // newest at the last sweep
	// Takes of each lane, started and completed (by the counters of every
	// generation, one after the other): see sweep.
	started, completed [counterLanes]atomic.Int64
	orders             [counterLanes]streamOrder // for each lane's Takes
}

// registryParts is how many maps the registry's lookups are spread over.
const registryParts = 32

type registryPart struct {
	mu  sync.RWMutex
	ids map[string]uint32 // tenant \x00 source
	_   [32]byte          // one part per cache line
}

type streamEntry struct {
	tenant, source string
	key            string       // tenant \x00 source; "" once forgotten
	last           atomic.Int64 // newest arrival bucket with events
	// The Takes started in each lane at its last event there (see sweep).
	takes [counterLanes]atomic.Int64
	gen   atomic.Uint32 // changes when the id is forgotten or given to a stream
}

// entryChunk is how many entries a chunk of Streams.chunks holds.
const entryChunk = 1 << 12

// NewStreams returns an empty registry with the caps of l.
func NewStreams(l Limits) *Streams {
	l = l.WithDefaults()
	// An id is new only when none is free, so ids stay below MaxStreams.
	s := &Streams{max: l.MaxStreams, perTenant: l.MaxStreamsPerTenant, idle: int64(l.StreamIdle / time.Second),
		seed: maphash.MakeSeed(), byTenant: map[string]int{},
		chunks: make([]atomic.Pointer[[entryChunk]streamEntry], (l.MaxStreams+entryChunk-1)/entryChunk)}
	for i := range s.parts {
		s.parts[i].ids = map[string]uint32{}
	}
	return s
}

// entry returns id's entry. Its names may be read without a lock by whoever
// holds the id from a lookup: they do not change until the id is forgotten,
// which waits for the Takes that may still hold it (see sweep).
func (s *Streams) entry(id uint32) *streamEntry {
	return &s.chunks[id/entryChunk].Load()[id%entryChunk]
}

func (s *Streams) part(key []byte) *registryPart {
	return &s.parts[maphash.Bytes(s.seed, key)%registryParts]
}

// Len returns the number of admitted streams.
func (s *Streams) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.admitted
}

// id returns the id of the stream key (tenant \x00 source), admitting it if it
// is new and the caps allow; ok is false when they do not. bucket is the
// arrival bucket of the event: it marks the stream as in use.
// The caller counts in a shard of lane, under the shard's lock.
func (s *Streams) id(key []byte, tenantLen int, bucket int64, lane int) (id uint32, ok bool) {
	p := s.part(key)
	p.mu.RLock()
	id, ok = p.ids[string(key)]
	if ok {
		s.touch(s.entry(id), bucket, lane) // under p.mu: a sweep sees it
	}
	p.mu.RUnlock()
	if ok {
		return id, true
	}
	return s.admit(p, key, tenantLen, bucket, lane)
}

// touch marks e as in use by lane.
func (s *Streams) touch(e *streamEntry, bucket int64, lane int) {
	if e.last.Load() < bucket {
		e.last.Store(bucket) // racing stores of nearby buckets: either is fine
	}
	// Shards of one lane apply concurrently, while a Take may begin: keep the
	// largest (sweep relies on it).
	takes, t := &e.takes[lane], s.started[lane].Load()
	for old := takes.Load(); old < t && !takes.CompareAndSwap(old, t); old = takes.Load() {
	}
	if s.newest.Load() < bucket {
		s.newest.Store(bucket)
	}
}

func (s *Streams) admit(p *registryPart, key []byte, tenantLen int, bucket int64, lane int) (uint32, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := p.ids[string(key)]; ok { // admitted meanwhile (maps change only under s.mu)
		s.touch(s.entry(id), bucket, lane)
		return id, true
	}
	if s.newest.Load() < bucket {
		s.newest.Store(bucket)
	}
	tenant := key[:tenantLen]
	if s.admitted >= s.max || s.byTenant[string(tenant)] >= s.perTenant {
		s.sweep()
		if s.admitted >= s.max || s.byTenant[string(tenant)] >= s.perTenant {
			return 0, false
		}
	}
	var id uint32
	if n := len(s.free); n > 0 {
		id, s.free = s.free[n-1], s.free[:n-1]
	} else {
		id = s.next
		s.next++
		if c := &s.chunks[id/entryChunk]; c.Load() == nil {
			c.Store(new([entryChunk]streamEntry))
		}
	}
	e := s.entry(id)
	e.gen.Add(1)
	e.key = string(key)
	e.tenant, e.source = e.key[:tenantLen], e.key[tenantLen+1:]
	e.last.Store(bucket)
	for l := range e.takes {
		e.takes[l].Store(-1) // unused
	}
	e.takes[lane].Store(s.started[lane].Load())
	p.mu.Lock()
	p.ids[e.key] = id
	p.mu.Unlock()
	s.admitted++
	s.byTenant[e.tenant]++
	return id, true
}

// sweep forgets the streams idle for StreamIdle, at most once per minute of
// arrival time; s.mu is held.
//
// A stream whose id may still be in a count pending in a lane, or in a batch
// a lane's Take is building, is never forgotten. Its last event in lane l
// came when s.started[l] was k, so its counts there are taken by Take k or
// k+1 of the lane (k if that Take had begun but not yet reached its shard):
// once s.completed[l] passes k, the lane holds it no more.
func (s *Streams) sweep() {
	newest := s.newest.Load()
	if newest < s.swept+60 {
		return
	}
	s.swept = newest
	var completed [counterLanes]int64
	for l := range completed {
		completed[l] = s.completed[l].Load()
	}
	idle := func(e *streamEntry) bool {
		if e.key == "" || e.last.Load() > newest-s.idle {
			return false
		}
		for l := range e.takes {
			if e.takes[l].Load() >= completed[l] {
				return false
			}
		}
		return true
	}
	for id := range s.next {
		e := s.entry(id)
		if !idle(e) {
			continue
		}
		// Lookups touch under their part's lock: once it is held, a stream
		// still idle stays so until it is gone from the map.
		p := s.part([]byte(e.key))
		p.mu.Lock()
		if !idle(e) {
			p.mu.Unlock()
			continue
		}
		delete(p.ids, e.key)
		p.mu.Unlock()
		s.admitted--
		if s.byTenant[e.tenant]--; s.byTenant[e.tenant] == 0 {
			delete(s.byTenant, e.tenant)
		}
		e.key, e.tenant, e.source = "", "", ""
		e.gen.Add(1)
		s.free = append(s.free, id)
	}
}

// name returns the tenant and source of id (see entry).
func (s *Streams) name(id uint32) (tenant, source string) {
	e := s.entry(id)
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
	reason decode.Reason
	detail string
}

type stagedEvent struct {
	tenantEnd, sourceEnd int // ends in buf; each starts where the previous ends
	time                 time.Time
}

// Reset empties s for the next message.
func (s *Staged) Reset() { s.buf, s.events, s.rejects = s.buf[:0], s.events[:0], s.rejects[:0] }

// Reject records that a record of the message (or the whole message) is not counted.
func (s *Staged) Reject(reason decode.Reason, detail string) {
	s.rejects = append(s.rejects, rejection{reason, detail})
}

// Add copies ev into s.
func (s *Staged) Add(ev decode.Event) {
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
// cellHead is what every cell has: its key and its place in its stream's list.
type cellHead struct {
	bucket int64
	stream uint32
	next   int32 // the stream's cell made before this one, -1 if none (see slot)
}

func (h *cellHead) head() *cellHead { return h }

type arrivalCell struct {
	cellHead
	events   uint32
	arrival  uint32 // the earliest record timestamp among them, Unix seconds (as a DateTime)
	lateness [storage.LatenessBuckets]uint32
}

type eventCell struct {
	cellHead
	events  uint32
	arrival uint32 // the latest record timestamp among them: when they were all in
}

// cells are the counts pending between two Takes.
type cells struct {
	arrival []arrivalCell
	event   []eventCell
	// The cells of the streams with more than listCells of a clock, by key.
	arrivalIdx, eventIdx map[cellKey]int32
}

func newCells() *cells {
	return &cells{arrivalIdx: map[cellKey]int32{}, eventIdx: map[cellKey]int32{}}
}

func (x *cells) len() int { return len(x.arrival) + len(x.event) }

// slot holds, per stream id, the stream's newest arrival and event cells of
// the current epoch, each the head of a list of its cells of that clock
// (linked by next). Most events of a stream fall in its newest cells, and a
// stream has a few cells between two Takes, so finding one is a walk of a few
// steps: far cheaper than a lookup in maps of 100 k cells. Past listCells of a
// clock (a stream catching up over many buckets), its cells of that clock go
// in a map as well.
type slot struct {
	epoch                uint32
	arrivalIdx, eventIdx int32
	arrivalN, eventN     uint16 // cells in each list, up to listCells+1
}

// listCells is the most cells of a stream and clock found by walking its list.
const listCells = 4

type topicPartition struct {
	topic     string
	partition int32
}

// counterShards is how many shards a Counter counts in. Partition p counts in
// shard p mod counterShards: with up to that many partitions per process no two
// partition goroutines ever wait for each other (one lock for all of them made
// the goroutines queue behind it, leaving a core idle; docs/ingest-speed.md).
const counterShards = 8

// counterLanes is how many lanes the shards are taken and written in: shard i
// is in lane i mod counterLanes. Each lane has its own flusher, whose writes
// carry the counts and the progress of the lane's partitions only, so the
// lanes store concurrently and each write stays atomic for its partitions
// (docs/exactly-once.md). One flusher for everything could not keep up with
// the partition goroutines on two cores.
const counterLanes = 2

// Counter sums staged events per stream, bucket and clock, and remembers for
// each partition the offset up to which they are counted. Partition goroutines
// Apply; one flusher per lane Takes. A message's events and its offset are
// applied under one lock (its partition's shard's), so a Take never splits a
// message. When a lane's share of MaxPendingCells is pending, Apply waits for
// its next Take: backpressure, never an unbounded map.
type Counter struct {
	width   int64 // bucket width in seconds
	streams *Streams
	max     int // pending cells per lane
	maxDead int
	shards  [counterShards]shard
	lanes   [counterLanes]lane

	deadBytes atomic.Int64 // of the shards' dead letters
	closed    atomic.Bool

	mu    sync.Mutex
	taken *sync.Cond               // on mu: broadcast by Take and Close
	lag   map[topicPartition]int64 // records behind the high-water mark, after the last fetch; under mu
}

type lane struct {
	pending  atomic.Int64  // cells in the lane's shards' cur
	fullSent atomic.Bool   // full was signalled since the last Take
	full     chan struct{} // signalled once per Take when a quarter of max is pending
	caughtUp chan struct{} // signalled when the last partition catching up has caught up
}

// shard is the counting state of the partitions p with p mod counterShards
// equal to its index.
type shard struct {
	mu        sync.Mutex
	cur       *cells
	spare     *cells // emptied cells of the Take before last, reused
	slots     []slot // by stream id
	taken     uint32 // Takes of this shard: a slot of an older one is stale
	offsets   map[topicPartition]storage.Offset
	dead      []DeadLetter
	deadBytes int
	key       []byte
	_         [64]byte // keeps neighbouring shards' locks off one cache line
}

// NewCounter returns a counter with buckets of width w.
func NewCounter(w time.Duration, streams *Streams, l Limits) *Counter {
	l = l.WithDefaults()
	c := &Counter{width: int64(w / time.Second), streams: streams, max: max(1, l.MaxPendingCells/counterLanes),
		maxDead: l.MaxPendingDLQBytes, lag: map[topicPartition]int64{}}
	for i := range c.shards {
		c.shards[i].cur, c.shards[i].offsets = newCells(), map[topicPartition]storage.Offset{}
	}
	for i := range c.lanes {
		c.lanes[i].full, c.lanes[i].caughtUp = make(chan struct{}, 1), make(chan struct{}, 1)
	}
	c.taken = sync.NewCond(&c.mu)
	return c
}

// shard returns the shard of partition and its lane.
func (c *Counter) shard(partition int32) (*shard, int) {
	i := uint32(partition) % counterShards
	return &c.shards[i], int(i % counterLanes)
}

// Lanes is the number of lanes: TakeLane's, Full's and CaughtUp's argument
// ranges over [0, Lanes).
func (c *Counter) Lanes() int { return counterLanes }

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
	sh, li := c.shard(m.Partition)
	ln := &c.lanes[li]
	if err := c.wait(ln, s.Len()); err != nil {
		return 0, err
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	width := time.Duration(c.width) * time.Second
	arrivalBucket := storage.BucketStart(m.Arrival, width)
	arrivalSec := uint32(min(max(m.Arrival.Unix(), 0), math.MaxUint32))
	cur, slotEpoch := sh.cur, sh.taken+1 // +1: a zero slot is never current
	before := cur.len()
	var (
		id   uint32
		have bool // id is the stream of event prev
		prev int
	)
	for i := range s.events {
		tenant, source, t := s.at(i)
		// Records of one message are often of one stream: look it up once.
		if !have || !s.sameStream(prev, i) {
			sh.key = append(append(append(sh.key[:0], tenant...), 0), source...)
			var ok bool
			if id, ok = c.streams.id(sh.key, len(tenant), arrivalBucket, li); !ok {
				if refused == 0 {
					s.Reject(ReasonStreamLimit, fmt.Sprintf("stream %.64q/%.64q is new and the stream caps are reached", tenant, source))
				}
				refused++
				have = false
				continue
			}
			have, prev = true, i
		}
		if int(id) >= len(sh.slots) {
			sh.slots = append(sh.slots, make([]slot, int(id)+1-len(sh.slots))...)
		}
		sl := &sh.slots[id]
		if sl.epoch != slotEpoch {
			*sl = slot{epoch: slotEpoch, arrivalIdx: -1, eventIdx: -1}
		}
		ai := sl.arrivalIdx // the newest cell: most events are in it
		if ai < 0 || cur.arrival[ai].bucket != arrivalBucket {
			ai = cur.arrivalCell(sl, id, arrivalBucket)
		}
		a := &cur.arrival[ai]
		if a.events == 0 || arrivalSec < a.arrival {
			a.arrival = arrivalSec // the earliest: the bucket had events from then on
		}
		a.events++
		a.lateness[storage.LatenessBucket(m.Arrival.Sub(t))]++
		ei := sl.eventIdx
		if eb := storage.BucketStart(t, width); ei < 0 || cur.event[ei].bucket != eb {
			ei = cur.eventCell(sl, id, eb)
		}
		e := &cur.event[ei]
		e.events++
		e.arrival = max(e.arrival, arrivalSec)
	}
	if added := cur.len() - before; added > 0 {
		if ln.pending.Add(int64(added)) >= int64(c.max/4) && ln.fullSent.CompareAndSwap(false, true) {
			select {
			case ln.full <- struct{}{}:
			default:
			}
		}
	}
	if len(s.rejects) > 0 {
		dl := newDeadLetter(m, s.rejects, refused)
		n := len(dl.Value) + len(dl.Key) + len(dl.Detail)
		sh.dead = append(sh.dead, dl)
		sh.deadBytes += n
		c.deadBytes.Add(int64(n))
	}
	tp := topicPartition{m.Topic, m.Partition}
	o := sh.offsets[tp]
	o.Topic, o.Partition, o.Next = m.Topic, m.Partition, m.Offset+1
	if m.Arrival.After(o.ArrivalHW) {
		o.ArrivalHW = m.Arrival.UTC().Truncate(time.Second)
	}
	sh.offsets[tp] = o
	return refused, nil
}

// wait blocks while the lane's pending counts or the dead letters are at their
// caps (a message of n events could not be added), until a Take or Close.
func (c *Counter) wait(ln *lane, n int) error {
	over := func() bool {
		p := ln.pending.Load()
		return p+2*int64(n) > int64(c.max) && p > 0 || c.deadBytes.Load() > int64(c.maxDead)
	}
	if c.closed.Load() {
		return ErrClosed
	}
	if !over() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for over() && !c.closed.Load() {
		c.taken.Wait()
	}
	if c.closed.Load() {
		return ErrClosed
	}
	return nil
}

// arrivalCell returns the index of the arrival cell of stream id (slot sl)
// and bucket, adding it if new.
func (x *cells) arrivalCell(sl *slot, id uint32, bucket int64) int32 {
	return cellOf[arrivalCell](&x.arrival, x.arrivalIdx, &sl.arrivalIdx, &sl.arrivalN, id, bucket)
}

// eventCell is arrivalCell for the event clock.
func (x *cells) eventCell(sl *slot, id uint32, bucket int64) int32 {
	return cellOf[eventCell](&x.event, x.eventIdx, &sl.eventIdx, &sl.eventN, id, bucket)
}

// cellPtr is a pointer to a cell type.
type cellPtr[C any] interface {
	*C
	head() *cellHead
}

// cellOf returns the index in *cs of the cell of stream id and bucket, whose
// list of cells starts at *head and holds *n (see slot), adding it if new.
func cellOf[C any, P cellPtr[C]](cs *[]C, idx map[cellKey]int32, head *int32, n *uint16, id uint32, bucket int64) int32 {
	if *n > listCells {
		if j, ok := idx[cellKey{id, bucket}]; ok {
			return j
		}
	} else {
		for j := *head; j >= 0; j = P(&(*cs)[j]).head().next {
			if P(&(*cs)[j]).head().bucket == bucket {
				return j
			}
		}
	}
	j := int32(len(*cs))
	var zero C
	*cs = append(*cs, zero)
	*P(&(*cs)[j]).head() = cellHead{bucket: bucket, stream: id, next: *head}
	*head = j
	switch {
	case *n > listCells:
		idx[cellKey{id, bucket}] = j
	case *n == listCells: // the list is long now: index all of it
		for k := j; k >= 0; k = P(&(*cs)[k]).head().next {
			idx[cellKey{id, P(&(*cs)[k]).head().bucket}] = k
		}
		*n++
	default:
		*n++
	}
	return j
}

// Idle records that partition has delivered everything before next and nothing
// since a while ago: its arrival watermark is now. This is the only place wall
// time enters the pipeline's clocks; a replay or a lagging partition is never
// idle, so its watermark stays driven by record timestamps.
func (c *Counter) Idle(topic string, partition int32, next int64, now time.Time) {
	sh, _ := c.shard(partition)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	tp := topicPartition{topic, partition}
	o, ok := sh.offsets[tp]
	if !ok {
		o = storage.Offset{Topic: topic, Partition: partition}
	}
	o.Next = max(o.Next, next)
	if now.After(o.ArrivalHW) {
		o.ArrivalHW = now.UTC().Truncate(time.Second)
	}
	sh.offsets[tp] = o
}

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
	// One allocation for every histogram, without their trailing zeros (most
	// events fall in the first classes; cells merged from several shards need
	// no more than their sum).
	used := 0
	for _, cur := range taken {
		if cur == nil {
			continue
		}
		for i := range cur.arrival {
			used += histLen(&cur.arrival[i].lateness)
		}
	}
	slab := make([]uint64, used)

	// The counts go out sorted by (tenant, source, clock, bucket): see
	// streamOrder, whose buffers are reused from Take to Take.
	o := &c.streams.orders[lanes[0]]
	o.mu.Lock()
	touched := o.touched[:0]
	for _, cur := range taken {
		if cur == nil {
			continue
		}
		for i := range cur.arrival {
			touched = append(touched, cur.arrival[i].stream)
		}
		for i := range cur.event {
			touched = append(touched, cur.event[i].stream)
		}
	}
	o.touched = touched
	rank := o.update(c.streams, touched)
	refs := o.refs[:0]
	for si, cur := range taken {
		if cur == nil {
			continue
		}
		for i := range cur.arrival {
			k := &cur.arrival[i]
			refs = append(refs, cellRef{rank: rank[k.stream], clock: storage.Arrival, shard: uint8(si), bucket: k.bucket, i: int32(i)})
		}
		for i := range cur.event {
			k := &cur.event[i]
			refs = append(refs, cellRef{rank: rank[k.stream], clock: storage.Event, shard: uint8(si), bucket: k.bucket, i: int32(i)})
		}
	}
	o.refs = refs
	o.sorted, o.start = sortCells(refs, len(o.keys), o.sorted, o.start)
	// A stream whose events came through partitions of several shards has a
	// cell of the same key in each: they are adjacent now, and become one count.
	var sum arrivalCell
	for lo := 0; lo < len(o.sorted); {
		r := o.sorted[lo]
		hi := lo + 1
		for hi < len(o.sorted) && sameCell(&o.sorted[hi], &r) {
			hi++
		}
		if r.clock == storage.Arrival {
			x := &taken[r.shard].arrival[r.i]
			if hi > lo+1 {
				sum = *x
				for _, q := range o.sorted[lo+1 : hi] {
					y := &taken[q.shard].arrival[q.i]
					sum.events += y.events
					sum.arrival = min(sum.arrival, y.arrival)
					for j := range sum.lateness {
						sum.lateness[j] += y.lateness[j]
					}
				}
				x = &sum
			}
			tenant, source := c.streams.name(x.stream)
			n := histLen(&x.lateness)
			lat := slab[:n:n]
			slab = slab[n:]
			for j := range lat {
				lat[j] = uint64(x.lateness[j])
			}
			b.Counts = append(b.Counts, storage.Count{Tenant: tenant, Source: source, Clock: storage.Arrival,
				Bucket: x.bucket, Events: uint64(x.events), Lateness: lat, Arrival: int64(x.arrival)})
		} else {
			x := taken[r.shard].event[r.i]
			for _, q := range o.sorted[lo+1 : hi] {
				y := &taken[q.shard].event[q.i]
				x.events += y.events
				x.arrival = max(x.arrival, y.arrival)
			}
			tenant, source := c.streams.name(x.stream)
			b.Counts = append(b.Counts, storage.Count{Tenant: tenant, Source: source, Clock: storage.Event, Bucket: x.bucket, Events: uint64(x.events),
				Arrival: int64(x.arrival)})
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
		for i := range c.lanes {
			select {
			case c.lanes[i].caughtUp <- struct{}{}:
			default:
			}
		}
	}
}

// CaughtUp is signalled to every lane when ingest has caught up with a
// backlog: the time to store what was read at once rather than at the next
// flush interval.
func (c *Counter) CaughtUp(lane int) <-chan struct{} { return c.lanes[lane].caughtUp }

// Full is signalled (once per TakeLane) when a quarter of the lane's share of
// MaxPendingCells is pending in it: writing then, not at the next interval,
// keeps batches — and the memory a write needs for them — bounded at any
// input rate.
func (c *Counter) Full(lane int) <-chan struct{} { return c.lanes[lane].full }

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
	n := int64(0)
	for i := range c.lanes {
		n += c.lanes[i].pending.Load()
	}
	return int(n)
}

// PendingLane returns the number of counts waiting for the lane's next Take.
func (c *Counter) PendingLane(lane int) int {
	return int(c.lanes[lane].pending.Load())
}

// Close makes pending and future Apply calls return ErrClosed.
func (c *Counter) Close() {
	c.mu.Lock()
	c.closed.Store(true)
	c.taken.Broadcast()
	c.mu.Unlock()
}
