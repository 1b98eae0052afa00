package ingest

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gapwatch/gapwatch/storage"
)

// ErrClosed is returned by Counter.Apply once the counter is closed.
var ErrClosed = errors.New("counter closed")

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
