package detect

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/gapwatch/gapwatch/storage"
)

// csvLookAhead is how many distinct bucket starts CSVCounts reads ahead to
// infer the bucket width when none is given.
const csvLookAhead = 16

// CSVCounts reads the backtest CSV (see ReadCountsCSV) as a stream of buckets
// for BacktestBuckets, in bounded memory: it holds the rows of the current
// bucket, plus, at the start, the first csvLookAhead buckets to infer the
// bucket width. The rows must be in time order (rows of one bucket in any
// order); a row earlier than the one before it is an error naming its line.
type CSVCounts struct {
	rows        csvRows
	step, phase time.Duration
	held        []storage.Count // rows read and not yet returned, in file order
	out         []storage.Count // the bucket returned by the last Next
	last        int64           // bucket of the last row read
	lastLine    int
	eof         bool
	given       bool // step was given, not inferred
	n, maxHeld  int
}

// NewCSVCounts reads the header and, when step is 0, the look-ahead from which
// the bucket width and phase are inferred (InferStep: the rows of the first
// buckets must show the smallest distance of a stream's bucket starts; a
// later row off that grid is an error asking for --step).
func NewCSVCounts(r io.Reader, step time.Duration) (*CSVCounts, error) {
	rows, err := newCSVRows(r)
	if err != nil {
		return nil, err
	}
	c := &CSVCounts{rows: rows, last: -1 << 62, given: step != 0} // step 0: rows not checked against a grid yet
	distinct := 0
	for distinct <= csvLookAhead && !c.eof {
		before := len(c.held)
		if err := c.read(); err != nil {
			return nil, err
		}
		if len(c.held) > before && (before == 0 || c.held[before].Bucket != c.held[before-1].Bucket) {
			distinct++
		}
		if step != 0 && len(c.held) > 0 {
			break // only the first row's phase is needed
		}
	}
	if len(c.held) == 0 {
		return c, nil
	}
	if step == 0 {
		c.step, c.phase, err = InferStep(c.held)
	} else {
		c.step = step
		c.phase, err = checkGrid(c.held, step)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// read appends the next row to c.held, checking its order, or sets c.eof.
func (c *CSVCounts) read() error {
	row, line, err := c.rows.next()
	if err == io.EOF {
		c.eof = true
		return nil
	}
	if err != nil {
		return err
	}
	if row.Bucket < c.last {
		return fmt.Errorf("%w: line %d: time %s is before %s on line %d: rows must be in time order "+
			"(sort them, keeping the header first: (head -n 1 f.csv; tail -n +2 f.csv | sort -t, -k1,1 -s))",
			ErrBadInput, line, rfc3339(time.Unix(row.Bucket, 0)), rfc3339(time.Unix(c.last, 0)), c.lastLine)
	}
	if c.step != 0 {
		w, p := int64(c.step/time.Second), int64(c.phase/time.Second)
		if floorDiv(row.Bucket-p, w)*w+p != row.Bucket {
			hint := "give --step" // the width inferred from the first buckets may be too wide
			if c.given {
				hint = "every stream's bucket starts must lie on one grid"
			}
			return fmt.Errorf("%w: line %d: bucket start %s is not on the %s grid of the rows before; %s",
				ErrBadInput, line, rfc3339(time.Unix(row.Bucket, 0)), c.step, hint)
		}
	}
	c.last, c.lastLine = row.Bucket, line
	c.held = append(c.held, row)
	c.n++
	c.maxHeld = max(c.maxHeld, len(c.held)+len(c.out))
	return nil
}

// Step and Phase return the bucket width and phase of the counts.
func (c *CSVCounts) Step() time.Duration  { return c.step }
func (c *CSVCounts) Phase() time.Duration { return c.phase }

// Rows returns the rows read so far; MaxHeld the most rows held at once.
func (c *CSVCounts) Rows() int    { return c.n }
func (c *CSVCounts) MaxHeld() int { return c.maxHeld }

// Next returns the counts of the next bucket, valid until the next call, or
// io.EOF after the last.
func (c *CSVCounts) Next() ([]storage.Count, error) {
	c.out = c.out[:0]
	if len(c.held) == 0 && !c.eof {
		if err := c.read(); err != nil {
			return nil, err
		}
	}
	if len(c.held) == 0 {
		return nil, io.EOF
	}
	b := c.held[0].Bucket
	for !c.eof && c.held[len(c.held)-1].Bucket == b {
		if err := c.read(); err != nil {
			return nil, err
		}
	}
	j := 0
	for j < len(c.held) && c.held[j].Bucket == b {
		j++
	}
	c.out = append(c.out, c.held[:j]...)
	n := copy(c.held, c.held[j:])
	clear(c.held[n:])
	c.held = c.held[:n]
	return c.out, nil
}

// EventCounts counts raw events per stream into buckets by event time, for a
// backtest of event files: bucket starts are multiples of the step since the
// Unix epoch. It holds only the buckets that may still receive events: a
// bucket is closed once the newest event time seen is allowed-lateness past
// its end, and an event for a closed bucket is dropped and counted (Late). So
// memory is bounded by streams × (allowed lateness / step + 1), whatever the
// input length. The counts are of the arrival clock (the clock live
// detection judges), the event time standing in for the arrival time.
type EventCounts struct {
	width, lateness int64
	held            map[int64]map[streamKey]uint64
	closed          int64 // every bucket before this is closed
	started         bool
	newest          int64
	out             []storage.Count
	cells, maxCells int

	// Events counted; Late events dropped because their bucket was closed.
	Events, Late int
}

// NewEventCounts returns an EventCounts for buckets of width step (whole
// seconds) and the given allowed lateness.
func NewEventCounts(step, allowedLateness time.Duration) (*EventCounts, error) {
	if step < time.Second || step%time.Second != 0 || allowedLateness < 0 {
		return nil, fmt.Errorf("%w: step must be a whole number of seconds and allowed lateness not negative", ErrBadInput)
	}
	return &EventCounts{width: int64(step / time.Second), lateness: int64(allowedLateness / time.Second),
		held: map[int64]map[streamKey]uint64{}, closed: -1 << 62}, nil
}

// Add counts one event; it reports false if its bucket was already closed.
func (c *EventCounts) Add(tenant, source []byte, t time.Time) bool {
	sec := t.Unix()
	b := floorDiv(sec, c.width) * c.width
	if b < c.closed {
		c.Late++
		return false
	}
	m := c.held[b]
	if m == nil {
		m = map[streamKey]uint64{}
		c.held[b] = m
	}
	k := streamKey{string(tenant), string(source)}
	if _, ok := m[k]; !ok {
		c.cells++
		c.maxCells = max(c.maxCells, c.cells)
	}
	m[k]++
	c.Events++
	if !c.started || sec > c.newest {
		c.started, c.newest = true, sec
		c.closed = max(c.closed, floorDiv(sec-c.lateness, c.width)*c.width)
	}
	return true
}

// Next returns the counts of the oldest held bucket if it is closed, or any
// held bucket if final (the input ended); false if there is none. The counts
// are sorted by stream and valid until the next call.
func (c *EventCounts) Next(final bool) ([]storage.Count, bool) {
	if len(c.held) == 0 {
		return nil, false
	}
	b := int64(0)
	first := true
	for k := range c.held {
		if first || k < b {
			b, first = k, false
		}
	}
	if !final && b >= c.closed {
		return nil, false
	}
	if final {
		c.closed = max(c.closed, b+c.width)
	}
	m := c.held[b]
	delete(c.held, b)
	c.cells -= len(m)
	c.out = c.out[:0]
	for k, n := range m {
		c.out = append(c.out, storage.Count{Tenant: k.tenant, Source: k.source, Clock: storage.Arrival, Bucket: b, Events: n})
	}
	slices.SortFunc(c.out, func(x, y storage.Count) int {
		return cmp.Or(strings.Compare(x.Tenant, y.Tenant), strings.Compare(x.Source, y.Source))
	})
	return c.out, true
}

// MaxHeld returns the most (bucket, stream) counts held at once.
func (c *EventCounts) MaxHeld() int { return c.maxCells }
