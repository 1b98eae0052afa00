package storage

import (
	"context"
	"fmt"
	"time"
)

// StreamName names one stream.
type StreamName struct{ Tenant, Source string }

// MaxStreamNames bounds the streams one StreamQuery returns.
const MaxStreamNames = 100_000

// StreamQuery asks for the streams that have counts stored (within the raw
// counts' retention), optionally of one tenant, sorted by tenant then source
// (byte order).
type StreamQuery struct {
	Tenant string // "" = every tenant
	Limit  int    // at most MaxStreamNames; 0 = MaxStreamNames
}

// Validate checks q.
func (q StreamQuery) Validate() error {
	if q.Limit < 0 || q.Limit > MaxStreamNames {
		return fmt.Errorf("%w: limit must be in [0, %d]", ErrBadQuery, MaxStreamNames)
	}
	return nil
}

// Max returns the number of streams q may return.
func (q StreamQuery) Max() int {
	if q.Limit == 0 {
		return MaxStreamNames
	}
	return q.Limit
}

// OffsetReader reads the stored progress of a topic's partitions; both
// stores implement it.
type OffsetReader interface {
	Offsets(ctx context.Context, topic string) (map[int32]Offset, error)
}

// IngestWatermark returns the pipeline's ingest watermark: the lowest arrival
// watermark (Offset.ArrivalHW) stored for the partitions parts of topics.
// Every record that arrived before it is counted. When some partition has no
// progress stored, or a topic no partitions, the watermark is unknown: it
// returns the zero time and the reason.
func IngestWatermark(ctx context.Context, r OffsetReader, topics []string, parts map[string][]int32) (time.Time, string, error) {
	var wm time.Time
	for _, topic := range topics {
		stored, err := r.Offsets(ctx, topic)
		if err != nil {
			return time.Time{}, "", err
		}
		if len(parts[topic]) == 0 {
			return time.Time{}, fmt.Sprintf("input topic %s has no partitions", topic), nil
		}
		for _, p := range parts[topic] {
			o, ok := stored[p]
			if !ok || o.ArrivalHW.IsZero() {
				return time.Time{}, fmt.Sprintf("no progress stored for %s/%d (is ingest running?)", topic, p), nil
			}
			if wm.IsZero() || o.ArrivalHW.Before(wm) {
				wm = o.ArrivalHW
			}
		}
	}
	return wm, "", nil
}
