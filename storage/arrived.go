package storage

import (
	"fmt"
	"time"
)

// StreamSpan is one stream's event-time buckets starting in [From, To) (Unix seconds).
type StreamSpan struct {
	Tenant, Source string
	From, To       int64
}

// ArrivedQuery asks for the events counted by event time in the buckets of
// Spans whose rows were counted from records that arrived in
// [ArrivedFrom, ArrivedTo) (Unix seconds; a row's arrival is the latest record
// timestamp among its events, Count.Arrival). Rows are immutable once stored,
// so the answer for a past arrival range never changes: detection reads late
// data at the same point of the arrival clock on replay as live.
type ArrivedQuery struct {
	Spans                  []StreamSpan
	ArrivedFrom, ArrivedTo int64
}

// MaxArrivedSpans bounds the spans of one ArrivedQuery (each is a condition
// of the query).
const MaxArrivedSpans = 500

// Validate reports a query that can never be answered as asked.
func (q ArrivedQuery) Validate() error {
	switch {
	case len(q.Spans) > MaxArrivedSpans:
		return fmt.Errorf("%w: %d spans, at most %d", ErrBadQuery, len(q.Spans), MaxArrivedSpans)
	case q.ArrivedFrom > q.ArrivedTo:
		return fmt.Errorf("%w: arrived from %s is after arrived to %s", ErrBadQuery,
			time.Unix(q.ArrivedFrom, 0).UTC(), time.Unix(q.ArrivedTo, 0).UTC())
	}
	for _, s := range q.Spans {
		if s.From > s.To {
			return fmt.Errorf("%w: span of %q/%q starts after it ends", ErrBadQuery, s.Tenant, s.Source)
		}
	}
	return nil
}

// Arrived is events of one stream and event-time bucket that arrived at
// Arrival, summed over rows (Unix seconds).
type Arrived struct {
	Tenant, Source string
	Bucket         int64
	Arrival        int64
	Events         uint64
}
