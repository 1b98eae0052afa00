// Package storage defines what gapwatch stores — event counts per stream, bucket and
// clock, and the Kafka offsets those counts cover — and the queries served from it.
// The ClickHouse store (package chstore) and the in-memory store (package memstore)
// implement the same semantics; package storetest checks that they answer alike.
//
// A Batch is the unit of durability: its counts and its offsets are stored together
// atomically or not at all, so the offsets a store reports are exactly the input its
// counts cover (see docs/exactly-once.md).
package storage

import (
	"errors"
	"fmt"
	"time"
)

// Clock says which time an event is counted by.
type Clock uint8

const (
	// Arrival counts an event by its Kafka record timestamp: when the log reached the bus.
	Arrival Clock = 0
	// Event counts an event by the time written in the log record itself.
	Event Clock = 1
)

// String returns the clock's name as used by the API: "arrival" or "event".
func (c Clock) String() string {
	switch c {
	case Arrival:
		return "arrival"
	case Event:
		return "event"
	}
	return fmt.Sprintf("clock(%d)", uint8(c))
}

// ParseClock reads a clock name; the empty string means Arrival.
func ParseClock(s string) (Clock, error) {
	switch s {
	case "", "arrival":
		return Arrival, nil
	case "event":
		return Event, nil
	}
	return 0, fmt.Errorf("unknown clock %q (want arrival or event)", s)
}

// LatenessBounds are the inclusive upper bounds, in seconds, of the lateness
// histogram kept per stream and arrival bucket; a last bucket counts everything later.
// Lateness is arrival time minus event time; events from the future count as 0.
var LatenessBounds = [...]int64{1, 10, 30, 60, 300, 900, 3600, 6 * 3600, 24 * 3600}

// LatenessBuckets is the length of a Count's Lateness histogram.
const LatenessBuckets = len(LatenessBounds) + 1

// LatenessBucket returns the histogram index for a lateness of d.
func LatenessBucket(d time.Duration) int {
	s := int64(d / time.Second)
	for i, b := range LatenessBounds {
		if s <= b {
			return i
		}
	}
	return len(LatenessBounds)
}

// Count is the number of events of one stream in one bucket of one clock, as
// counted by one batch. A store sums the Counts of all batches.
type Count struct {
	Tenant string
	Source string
	Clock  Clock
	Bucket int64  // bucket start, Unix seconds
	Events uint64 // events counted
	// Lateness is the histogram over LatenessBounds of arrival minus event time,
	// kept for the Arrival clock only (nil for Event). It may be shorter than
	// LatenessBuckets: the missing classes are zero.
	Lateness []uint64
	// Arrival is a record timestamp (Unix seconds; 0: unknown): for the Event
	// clock the latest among the events counted (when late events of an old
	// bucket were all in, ArrivedQuery), for the Arrival clock the earliest
	// (from when the bucket had events, StreamCount.First). Rows are
	// immutable, so detection reads both at the same point on replay as live.
	// (The earliest, not the latest: a batch written while catching up spans
	// minutes of arrivals.)
	Arrival int64
}

// Offset is the progress of one Kafka partition: every record before Next is counted.
type Offset struct {
	Topic     string
	Partition int32
	Next      int64     // next offset to consume
	ArrivalHW time.Time // highest record timestamp seen up to Next (the partition's arrival watermark)
}

// Batch is what ingest writes at once: counts and the offsets they bring the
// store up to. Stores write a Batch atomically.
type Batch struct {
	Counts  []Count
	Offsets []Offset
}

// Events returns the number of events the batch counts (each event appears once
// per clock; this counts the Arrival clock).
func (b Batch) Events() uint64 {
	var n uint64
	for _, c := range b.Counts {
		if c.Clock == Arrival {
			n += c.Events
		}
	}
	return n
}

// RateQuery asks for one stream's event counts in steps over [From, To).
type RateQuery struct {
	Tenant string
	Source string
	Clock  Clock
	From   time.Time // inclusive
	To     time.Time // exclusive
	Step   time.Duration
}

// MaxPoints bounds the number of points one rate query may return.
const MaxPoints = 11000

// ErrBadQuery marks a query that can never be answered as asked.
var ErrBadQuery = errors.New("bad query")

// Validate checks that q is answerable: whole-second step, non-empty range, bounded size.
// Tenant and source may be any text.
func (q RateQuery) Validate() error {
	if err := CheckTime("from", q.From); err != nil {
		return err
	}
	if err := CheckTime("to", q.To); err != nil {
		return err
	}
	switch {
	case q.Tenant == "" || q.Source == "":
		return fmt.Errorf("%w: tenant and source are required", ErrBadQuery)
	case q.Step < time.Second || q.Step%time.Second != 0:
		return fmt.Errorf("%w: step must be a whole number of seconds, got %s", ErrBadQuery, q.Step)
	case !q.From.Before(q.To):
		return fmt.Errorf("%w: from must be before to", ErrBadQuery)
	case (q.To.Unix()-q.From.Unix())/int64(q.Step/time.Second) > MaxPoints: // seconds: no duration saturates
		return fmt.Errorf("%w: %s / %s is more than %d points", ErrBadQuery, q.To.Sub(q.From), q.Step, MaxPoints)
	case q.Clock != Arrival && q.Clock != Event:
		return fmt.Errorf("%w: unknown clock %d", ErrBadQuery, q.Clock)
	}
	return nil
}

// StreamCount is one stream's events in one bucket of one clock, summed over batches.
type StreamCount struct {
	Tenant, Source string
	Bucket         int64 // bucket start, Unix seconds
	Events         uint64
	// Lateness sums the batches' histograms (Arrival clock; zero for Event).
	Lateness [LatenessBuckets]uint64
	// First is the earliest Count.Arrival of the batches: before it, no event
	// of the bucket was stored (0: unknown).
	First int64
}

// Count returns c as a count of clock, as detection reads it: its first
// arrival as Count.Arrival (when the bucket's first events were in: early
// silence, detect.Engine.Peek). Lateness aliases c's.
func (c *StreamCount) Count(clock Clock) Count {
	return Count{Tenant: c.Tenant, Source: c.Source, Clock: clock, Bucket: c.Bucket, Events: c.Events,
		Lateness: c.Lateness[:], Arrival: c.First}
}

// Point is the events counted in [T, T+step).
type Point struct {
	T      time.Time
	Events uint64
}

// Steps returns the number of points and the first point's start for q: From
// rounded down to a multiple of Step (since the Unix epoch), up to To exclusive.
func (q RateQuery) Steps() (start int64, n int) {
	step := int64(q.Step / time.Second)
	start = floorDiv(q.From.Unix(), step) * step
	end := q.To.Unix()
	n = int((end - start + step - 1) / step)
	return start, n
}

// FillPoints turns sparse sums by step index into the dense point list of q,
// with a zero point for every step that had no events.
func FillPoints(q RateQuery, sums map[int64]uint64) []Point {
	start, n := q.Steps()
	step := int64(q.Step / time.Second)
	pts := make([]Point, n)
	for i := range pts {
		pts[i] = Point{T: time.Unix(start+int64(i)*step, 0).UTC(), Events: sums[int64(i)]}
	}
	return pts
}

// BucketStart returns the start, in Unix seconds, of the bucket of width w containing t.
func BucketStart(t time.Time, w time.Duration) int64 {
	ws := int64(w / time.Second)
	return floorDiv(t.Unix(), ws) * ws
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
