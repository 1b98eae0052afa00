package storage

import (
	"fmt"
	"time"
)

// Alert is one alert event as the detector publishes it, with the fields of its
// gap (zero for pipeline events) kept apart for queries.
type Alert struct {
	ID      string    // CloudEvents id (deterministic)
	Type    string    // CloudEvents type, e.g. io.gapwatch.gap.opened
	Time    time.Time // CloudEvents time
	Key     string    // Kafka message key (stream id, or the pipeline's)
	Payload []byte    // the exact bytes published

	GapID, Tenant, Source, Kind    string
	StartedAt, DetectedAt, EndedAt time.Time // EndedAt zero unless resolved
	Expected, Observed, Missing    float64
	Seq                            uint32
	// Planned marks an alert of a gap inside a maintenance window, Suppressed
	// one rolled up into a single pipeline alert (the whole input went quiet):
	// both are recorded and never published.
	Planned, Suppressed bool
}

// DetectProgress is how far one detector instance (shard Shard of Shards) has
// come: its alert batch Seq covers every bucket ending at or before Watermark.
// AlertOffsets are the alert topic's end offsets, by partition, taken just
// before the batch was published: on restart, the batch's alerts found at or
// after them were published, the others were not (see docs/exactly-once.md).
type DetectProgress struct {
	Shard, Shards int
	Seq           uint64
	Watermark     time.Time
	AlertOffsets  []int64
}

// AlertBatch is what the detector stores at once: the alerts of one step and
// the progress that step reaches. Stores write an AlertBatch atomically.
type AlertBatch struct {
	DetectProgress
	Alerts []Alert
}

// Gap states for GapQuery.State.
const (
	GapsOpen     = "open"
	GapsResolved = "resolved"
	GapsAll      = "all"
)

// MaxGaps bounds the number of gaps one query returns.
const MaxGaps = 10000

// GapQuery asks for the gaps that overlap [From, To), optionally of one tenant
// and source, in one state. A zero From or To leaves that side open.
type GapQuery struct {
	Tenant, Source string
	State          string // GapsOpen, GapsResolved or GapsAll ("" = all)
	From, To       time.Time
	Limit          int // at most MaxGaps; 0 = MaxGaps
	// After pages through a longer answer: only the gaps after this one in
	// the answer's order (by StartedAt, then ID). Zero: from the first.
	After GapCursor
}

// GapCursor is a gap's place in the order of a GapQuery's answer.
type GapCursor struct {
	StartedAt time.Time
	ID        string
}

// Cursor returns g's place in the order of a GapQuery's answer.
func (g Gap) Cursor() GapCursor { return GapCursor{StartedAt: g.StartedAt, ID: g.ID} }

// Validate checks q.
func (q GapQuery) Validate() error {
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"from", q.From}, {"to", q.To}} {
		if !t.t.IsZero() {
			if err := CheckTime(t.name, t.t); err != nil {
				return err
			}
		}
	}
	switch {
	case q.State != "" && q.State != GapsOpen && q.State != GapsResolved && q.State != GapsAll:
		return fmt.Errorf("%w: state must be open, resolved or all, got %q", ErrBadQuery, q.State)
	case !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To):
		return fmt.Errorf("%w: from must be before to", ErrBadQuery)
	case q.Limit < 0 || q.Limit > MaxGaps:
		return fmt.Errorf("%w: limit must be in [0, %d]", ErrBadQuery, MaxGaps)
	}
	return nil
}

// Gap is a gap's latest state, folded from its alerts.
type Gap struct {
	ID, Tenant, Source, Kind    string
	StartedAt, DetectedAt       time.Time
	EndedAt                     time.Time // zero while open
	Expected, Observed, Missing float64
	Planned                     bool // inside a maintenance window (silence)
	// ResolvedObserved is the observed events of its gap.resolved (0 while
	// open): gap.updated events after it carry the events of the gap's
	// period that arrived late (by event time).
	ResolvedObserved float64
}

// Open reports whether the gap has not ended.
func (g Gap) Open() bool { return g.EndedAt.IsZero() }

// FilledLate returns the events of the gap's period that arrived after it
// resolved: what its updates observed beyond its resolve (0 while open).
func (g Gap) FilledLate() float64 {
	if g.Open() {
		return 0
	}
	return max(0, g.Observed-g.ResolvedObserved)
}

// Matches reports whether g answers q (which must be valid).
func (q GapQuery) Matches(g Gap) bool {
	switch {
	case q.Tenant != "" && g.Tenant != q.Tenant, q.Source != "" && g.Source != q.Source:
		return false
	case q.State == GapsOpen && !g.Open(), q.State == GapsResolved && g.Open():
		return false
	case !q.To.IsZero() && !g.StartedAt.Before(q.To):
		return false
	case !q.From.IsZero() && !g.Open() && !g.EndedAt.After(q.From):
		return false
	case g.StartedAt.Before(q.After.StartedAt), g.StartedAt.Equal(q.After.StartedAt) && g.ID <= q.After.ID:
		return false
	}
	return true
}
