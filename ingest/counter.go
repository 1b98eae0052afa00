package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gapwatch/gapwatch/storage"
)

// Limits bound what one ingest process holds in memory, whatever the input.
type Limits struct {
	MaxStreams          int `yaml:"max_streams"`            // distinct (tenant, source) streams counted; default 100000
	MaxStreamsPerTenant int `yaml:"max_streams_per_tenant"` // default 10000
	MaxPendingCells     int `yaml:"max_pending_cells"`      // counts held between flushes before consumers wait; default 500000
	MaxPendingDLQBytes  int `yaml:"max_pending_dlq_bytes"`  // dead letters held between flushes before consumers wait; default 32 MiB
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
	return l
}

// ErrClosed is returned by Counter.Apply once the counter is closed.
var ErrClosed = errors.New("counter closed")

// Streams admits new streams up to the configured caps. It lives as long as the
// process, across consumer-group generations. Safe for concurrent use.
type Streams struct {
	max, perTenant int

	mu        sync.Mutex
	known     map[string]struct{} // tenant \x00 source
	byTenant  map[string]int
	keyScrach []byte
}

// NewStreams returns an empty registry with the caps of l.
func NewStreams(l Limits) *Streams {
	l = l.WithDefaults()
	return &Streams{max: l.MaxStreams, perTenant: l.MaxStreamsPerTenant, known: map[string]struct{}{}, byTenant: map[string]int{}}
}

// Len returns the number of admitted streams.
func (s *Streams) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.known)
}

// admit reports whether events of (tenant, source) may be counted.
func (s *Streams) admit(tenant, source []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keyScrach = append(append(append(s.keyScrach[:0], tenant...), 0), source...)
	if _, ok := s.known[string(s.keyScrach)]; ok {
		return true
	}
	if len(s.known) >= s.max || s.byTenant[string(tenant)] >= s.perTenant {
		return false
	}
	s.known[string(s.keyScrach)] = struct{}{}
	s.byTenant[string(tenant)]++
	return true
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

type cell struct {
	tenant, source string
	clock          storage.Clock
	bucket         int64
	events         uint64
	lateness       [storage.LatenessBuckets]uint64
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
	cells     map[string]*cell
	offsets   map[topicPartition]storage.Offset
	dead      []DeadLetter
	deadBytes int
	key       []byte
}

// NewCounter returns a counter with buckets of width w.
func NewCounter(w time.Duration, streams *Streams, l Limits) *Counter {
	l = l.WithDefaults()
	c := &Counter{width: int64(w / time.Second), streams: streams, max: l.MaxPendingCells, maxDead: l.MaxPendingDLQBytes,
		cells: map[string]*cell{}, offsets: map[topicPartition]storage.Offset{}}
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
	for (len(c.cells)+2*s.Len() > c.max && len(c.cells) > 0 || c.deadBytes > c.maxDead) && !c.closed {
		c.taken.Wait()
	}
	if c.closed {
		return 0, ErrClosed
	}
	width := time.Duration(c.width) * time.Second
	arrivalBucket := storage.BucketStart(m.Arrival, width)
	for i := range s.events {
		tenant, source, t := s.at(i)
		a := c.cell(tenant, source, storage.Arrival, arrivalBucket, false)
		if a == nil { // first event of this stream since the last Take: is the stream admitted?
			if !c.streams.admit(tenant, source) {
				if refused == 0 {
					s.Reject(ReasonStreamLimit, fmt.Sprintf("stream %.64q/%.64q is new and the stream caps are reached", tenant, source))
				}
				refused++
				continue
			}
			a = c.cell(tenant, source, storage.Arrival, arrivalBucket, true)
		}
		a.events++
		a.lateness[storage.LatenessBucket(m.Arrival.Sub(t))]++
		e := c.cell(tenant, source, storage.Event, storage.BucketStart(t, width), true)
		e.events++
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

// cell returns the pending count of a stream, clock and bucket; a missing one is
// created when create is set, else nil is returned.
func (c *Counter) cell(tenant, source []byte, clock storage.Clock, bucket int64, create bool) *cell {
	c.key = append(append(append(c.key[:0], tenant...), 0), source...)
	c.key = append(c.key, byte(clock))
	c.key = binary.BigEndian.AppendUint64(c.key, uint64(bucket))
	if x, ok := c.cells[string(c.key)]; ok || !create {
		return x
	}
	x := &cell{tenant: string(tenant), source: string(source), clock: clock, bucket: bucket}
	c.cells[string(c.key)] = x
	return x
}

// Take returns everything applied since the last Take — the counts as one batch,
// and the dead letters — and wakes waiting Apply calls. The batch's offsets carry
// each partition's latest progress.
func (c *Counter) Take() (storage.Batch, []DeadLetter) {
	c.mu.Lock()
	cells, offsets, dead := c.cells, c.offsets, c.dead
	c.cells, c.offsets, c.dead, c.deadBytes = make(map[string]*cell, len(cells)), map[topicPartition]storage.Offset{}, nil, 0
	c.taken.Broadcast()
	c.mu.Unlock()

	b := storage.Batch{Counts: make([]storage.Count, 0, len(cells)), Offsets: make([]storage.Offset, 0, len(offsets))}
	for _, x := range cells {
		cnt := storage.Count{Tenant: x.tenant, Source: x.source, Clock: x.clock, Bucket: x.bucket, Events: x.events}
		if x.clock == storage.Arrival {
			cnt.Lateness = append([]uint64(nil), x.lateness[:]...)
		}
		b.Counts = append(b.Counts, cnt)
	}
	for _, o := range offsets {
		b.Offsets = append(b.Offsets, o)
	}
	return b, dead
}

// Pending returns the number of counts waiting for the next Take.
func (c *Counter) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cells)
}

// Close makes pending and future Apply calls return ErrClosed.
func (c *Counter) Close() {
	c.mu.Lock()
	c.closed = true
	c.taken.Broadcast()
	c.mu.Unlock()
}
