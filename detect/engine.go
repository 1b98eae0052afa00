// Package detect finds gaps in log streams: it learns each stream's baseline
// (a seasonal, overdispersed count model), judges every bucket up to the
// watermark for silence, partial drop and lateness, keeps each gap's lifecycle
// with hysteresis (opened → updated → resolved) and renders the lifecycle as
// CloudEvents. It is pure: no I/O, no wall clock; the caller feeds counts and a
// watermark (see Engine.Advance), so a backtest, a replay and live detection
// produce the same events byte for byte.
//
// Thresholds are not tuned per data set: they follow from a false-alarm budget
// per stream and week (Config.FalseAlarmsPerWeek), see DESIGN.md in this folder.
package detect

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gapwatch/gapwatch/storage"
)

// Config configures an Engine. The zero value of every field means its default.
type Config struct {
	// Bucket is the width of a count bucket, a whole number of seconds. Default 1m.
	Bucket time.Duration
	// Phase is the offset of bucket starts from multiples of Bucket since the
	// Unix epoch, for data whose buckets are not epoch-aligned. Default 0.
	Phase time.Duration
	// Clock is the clock whose counts are judged; counts of the other clock are
	// ignored. Default storage.Arrival.
	Clock storage.Clock
	// Workers is the number of goroutines that judge streams, each owning a
	// hash shard of them. Default runtime.GOMAXPROCS(0).
	Workers int
	// Shard and Shards split streams across instances: this engine keeps only
	// streams with hash % Shards == Shard. Default 0 of 1 (all streams).
	Shard, Shards int
	// FalseAlarmsPerWeek is the budget of false gaps per stream and week under
	// the model, split evenly between the silence, drop and late tests; every
	// threshold is derived from it and the bucket width. Default 0.03 (a
	// margin of 3 under the product target of 0.1 for model error).
	FalseAlarmsPerWeek float64
	// DropFraction is the share of lost events the drop test is designed for
	// (the alternative of its likelihood ratio). Default 0.5.
	DropFraction float64
	// ResolveAfter is how long a stream must be healthy before its gap is
	// resolved (at least 2 buckets): the hysteresis that keeps a flapping
	// stream in one gap. Default 15m.
	ResolveAfter time.Duration
	// RetireAfter is how long a stream's judged buckets must have had no
	// events before the stream is retired: its state is dropped (memory
	// freed), an open gap gets a final gap.resolved marked retired, and it is
	// reported in Result.Retired. A retired stream that sends again starts
	// afresh (learning). At least 1h and longer than ResolveAfter. Default 7 days.
	RetireAfter time.Duration
	// UpdateFirst is when an open gap is first updated after it opened; the
	// interval then doubles up to UpdateMax. Defaults 15m and 4h.
	UpdateFirst, UpdateMax time.Duration
	// EventSource is the CloudEvents source. Default DefaultEventSource.
	EventSource string
	// WeekendFloor is the share of a weekday's rate that a stream's weekend
	// may carry, as far as the silence and drop tests are concerned, while
	// its daily profile is not in use (from two days to two weeks of history):
	// a fresh install's first weekends then page no one. 1 judges weekends as
	// weekdays (for streams known to have no weekly rhythm). Default
	// DefaultWeekendFloor (0.25).
	WeekendFloor float64
	// Expectations makes Advance also return, per stream and judged bucket,
	// the expectation and band (for the API and the coverage record).
	Expectations bool
}

func (c Config) withDefaults() Config {
	if c.Bucket == 0 {
		c.Bucket = time.Minute
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.Shards == 0 {
		c.Shards = 1
	}
	if c.FalseAlarmsPerWeek == 0 {
		c.FalseAlarmsPerWeek = 0.03
	}
	if c.DropFraction == 0 {
		c.DropFraction = 0.5
	}
	if c.ResolveAfter == 0 {
		c.ResolveAfter = 15 * time.Minute
	}
	if c.RetireAfter == 0 {
		c.RetireAfter = 7 * 24 * time.Hour
	}
	if c.UpdateFirst == 0 {
		c.UpdateFirst = 15 * time.Minute
	}
	if c.UpdateMax == 0 {
		c.UpdateMax = 4 * time.Hour
	}
	if c.EventSource == "" {
		c.EventSource = DefaultEventSource
	}
	if c.WeekendFloor == 0 {
		c.WeekendFloor = DefaultWeekendFloor
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Bucket < time.Second || c.Bucket%time.Second != 0:
		return fmt.Errorf("bucket must be a whole number of seconds, got %s", c.Bucket)
	case c.Bucket > 24*time.Hour:
		return fmt.Errorf("bucket must be at most 24h, got %s", c.Bucket)
	case c.Phase < 0 || c.Phase >= c.Bucket || c.Phase%time.Second != 0:
		return fmt.Errorf("phase must be whole seconds in [0, bucket), got %s", c.Phase)
	case c.Clock != storage.Arrival && c.Clock != storage.Event:
		return fmt.Errorf("unknown clock %d", c.Clock)
	case c.Workers < 1:
		return fmt.Errorf("workers must be at least 1, got %d", c.Workers)
	case c.Shards < 1 || c.Shard < 0 || c.Shard >= c.Shards:
		return fmt.Errorf("shard %d of %d is not a shard", c.Shard, c.Shards)
	case !(c.FalseAlarmsPerWeek > 0 && c.FalseAlarmsPerWeek < 10):
		return fmt.Errorf("false alarms per week must be in (0, 10), got %g", c.FalseAlarmsPerWeek)
	case !(c.WeekendFloor > 0 && c.WeekendFloor <= 1):
		return fmt.Errorf("weekend floor must be in (0, 1], got %g", c.WeekendFloor)
	case !(c.DropFraction > 0 && c.DropFraction < 1):
		return fmt.Errorf("drop fraction must be in (0, 1), got %g", c.DropFraction)
	case c.ResolveAfter < 0 || c.UpdateFirst < 0 || c.UpdateMax < c.UpdateFirst:
		return errors.New("resolve_after, update_first and update_max must be positive, update_max ≥ update_first")
	case c.RetireAfter < time.Hour || c.RetireAfter <= c.ResolveAfter:
		return fmt.Errorf("retire_after must be at least 1h and longer than resolve_after (%s), got %s", c.ResolveAfter, c.RetireAfter)
	}
	return nil
}

// thresholds are the decision constants, all derived from the configuration.
type thresholds struct {
	lnAlpha    float64 // silence: log of the per-run false alarm probability
	h          float64 // CUSUM threshold of the drop and late tests
	hResolve   float64 // recovery evidence needed to resolve (log odds)
	rho        float64 // mean under the drop alternative, as a share of expected
	rhoSilence float64 // ... used to judge recovery from a silence
	anomalous  float64 // a bucket whose lower tail is below this is not learned
	minLearned uint16  // buckets learned before a stream is judged
	hold       int32   // healthy buckets before a gap resolves
	retire     int64   // seconds without events before a stream is retired
	// rhos are the drop CUSUMs' alternatives: the share of events kept under
	// the configured drop fraction, and under a deep drop (75 % lost,
	// deepDrop), which a heavy loss crosses in far fewer buckets. They and
	// the rank test (rank.go) each run at hDrop = h + ln 3 (their false
	// alarms add up to at most one test's).
	rhos  [2]float64
	hDrop float64
}

func newThresholds(c Config) thresholds {
	w := c.Bucket.Seconds()
	perWeek := 7 * 86400 / w
	// Each test may start at most one run per bucket. A silence run fires when
	// P(all zero | baseline) < alpha; a CUSUM of log-likelihood ratios crosses h
	// under the null at most once per e^h buckets on average. So with
	// alpha = e^-h = budget / buckets per week, each test's false alarms per
	// stream-week stay within its share of the budget.
	budget := c.FalseAlarmsPerWeek / 3
	h := math.Log(perWeek / budget)
	return thresholds{
		lnAlpha:    -h,
		h:          h,
		hResolve:   math.Log(100),
		rho:        1 - c.DropFraction,
		rhoSilence: 0.05,
		anomalous:  0.01,
		minLearned: 3,
		hold:       int32(max(2, math.Ceil(c.ResolveAfter.Seconds()/w))),
		retire:     int64(c.RetireAfter / time.Second),
		rhos:       [2]float64{1 - c.DropFraction, deepDrop},
		hDrop:      h + math.Log(3),
	}
}

// blockBuckets is the drop test's block, in buckets of width seconds: about
// 30 minutes.
func blockBuckets(width int64) int64 { return max(1, (1800+width/2)/width) }

// deepDrop is the share of events kept in the second drop CUSUM's
// alternative: a loss of three quarters.
const deepDrop = 0.25

// heavyDrop is the share of events kept in the heavy-drop alternative: a
// fresh stream's cold-start evidence that its rate fell (coldIdle), and the
// deep CUSUM's alternative where a young stream's weekend may be quieter.
const heavyDrop = 0.1

// Expectation is a stream's judged bucket: what was expected and observed.
type Expectation struct {
	Tenant, Source string
	Bucket         time.Time // bucket start
	Observed       uint64
	// Expected with an approximate 99 % band; zero while learning.
	Expected, Lower, Upper float64
	// State is "learning", "ok", "gap" (silence), "drop" or "late".
	State string
	// Profile is what the expectation follows (ProfileShortTerm, ProfileHourly,
	// ProfileWeekly) and Weekend how the stream's possible weekends are judged
	// (WeekendRecent, WeekendLenient, WeekendLearned, WeekendProfile,
	// WeekendWeekday): how much of its profile the stream has learned.
	Profile, Weekend string
	// LastEvents is the start of the stream's last judged bucket with events
	// (zero if none); set in ExpectLast mode only.
	LastEvents time.Time
}

// Result is what one Advance decided.
type Result struct {
	Events       []Event       // sorted by time, stream, gap and sequence
	Expectations []Expectation // by SetExpectations (Config.Expectations: ExpectEvery); sorted by stream and bucket
	Explanations []Explanation // the stream named by Explain, by bucket
	// Ignored counts the input counts that were not used: of another clock, of
	// another instance's shard, or for buckets already judged (too late).
	Ignored int
	// Retired lists the streams retired in this call (Config.RetireAfter),
	// sorted by time, tenant and source.
	Retired []StreamRef
}

// StreamRef names a stream retired at At: the end of the bucket that completed
// Config.RetireAfter without events.
type StreamRef struct {
	Tenant, Source string
	At             time.Time
}

// Engine judges streams bucket by bucket as the watermark advances. Streams are
// sharded by a stable hash over Config.Workers shards; during Advance each
// shard is owned by one goroutine, so the hot path takes no lock. An Engine
// itself is not safe for concurrent calls to Advance.
type Engine struct {
	cfg      Config
	width    int64
	phase    int64
	th       thresholds
	model    model
	shards   []*shard
	wm       int64 // every bucket ending at or before wm has been judged
	blockLen int64 // blockBuckets(width)
	parts    [][]storage.Count
	expect   ExpectMode
	explain  *streamKey // Explain's stream
}

type streamKey struct{ tenant, source string }

// shard is the state one worker owns.
type shard struct {
	e       *Engine
	streams map[streamKey]*stream
	events  []Event
	exps    []Expectation
	last    Expectation // ExpectLast: the stream's latest judged bucket so far
	hasLast bool
	retired []StreamRef
	late    int
	expl    []Explanation // Engine.Explain's stream, if this shard owns it
	// The run (buckets, the one it opened in counted whole) and log
	// probability of the last silence earlySilence opened, for Explain.
	earlyRun  int32
	earlyLogP float64
}

// ExpectMode says which expectations Advance returns.
type ExpectMode uint8

const (
	// ExpectNone: none (Config.Expectations false).
	ExpectNone ExpectMode = iota
	// ExpectEvery: one per stream and judged bucket (Config.Expectations true).
	ExpectEvery
	// ExpectLast: one per stream judged in the call, of its last judged
	// bucket, with LastEvents set: what a status needs, at a fraction of the
	// cost (a start-up replay).
	ExpectLast
)

// SetExpectations switches which expectations the next Advance calls return.
// Not safe to call during Advance.
func (e *Engine) SetExpectations(m ExpectMode) { e.expect = m }

// New returns an engine for cfg.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	e := &Engine{
		cfg:    cfg,
		expect: ExpectNone,
		width:  int64(cfg.Bucket / time.Second),
		phase:  int64(cfg.Phase / time.Second),
		th:     newThresholds(cfg),
		wm:     math.MinInt64,
		parts:  make([][]storage.Count, cfg.Workers),
	}
	if cfg.Expectations {
		e.expect = ExpectEvery
	}
	e.model = newModel(e.width)
	e.model.weekendFloor = cfg.WeekendFloor
	e.blockLen = blockBuckets(e.width)
	for range cfg.Workers {
		e.shards = append(e.shards, &shard{e: e, streams: make(map[streamKey]*stream)})
	}
	return e, nil
}

// Config returns the engine's configuration with defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// Streams returns the number of streams the engine holds.
func (e *Engine) Streams() int {
	n := 0
	for _, s := range e.shards {
		n += len(s.streams)
	}
	return n
}

// streamHash is the stable hash that places a stream on an instance and a worker.
func streamHash(tenant, source string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(tenant))
	h.Write([]byte{0})
	h.Write([]byte(source))
	return h.Sum64()
}

// OwnsStream reports whether stream (tenant, source) belongs to shard
// Config.Shard of Config.Shards.
func (e *Engine) OwnsStream(tenant, source string) bool {
	return streamHash(tenant, source)%uint64(e.cfg.Shards) == uint64(e.cfg.Shard)
}

// bucketOf returns the start of the bucket containing t (Unix seconds).
func (e *Engine) bucketOf(t int64) int64 {
	return floorDiv(t-e.phase, e.width)*e.width + e.phase
}

// blockEnd reports whether bucket b is the last of a drop-test block.
func (e *Engine) blockEnd(b int64) bool {
	i := floorDiv(b-e.phase, e.width) + 1
	return i%e.blockLen == 0
}

// Advance takes the counts that arrived since the last call and judges every
// stream's buckets that end at or before watermark and have not been judged
// yet; a stream with no count for such a bucket had zero events in it. Counts
// for buckets not yet complete are kept for a later call; counts for buckets
// already judged are ignored (Result.Ignored). A stream exists from the first
// bucket it has a count for. Several counts for the same stream and bucket add
// up. The result does not depend on how the same counts and watermarks are
// split into calls, except that a count must arrive before its bucket is judged.
func (e *Engine) Advance(watermark time.Time, counts []storage.Count) Result {
	var res Result
	for i := range e.parts {
		e.parts[i] = e.parts[i][:0]
	}
	for _, c := range counts {
		w, ok := e.worker(c)
		if !ok {
			res.Ignored++
			continue
		}
		e.parts[w] = append(e.parts[w], c)
	}
	// Judge the buckets [.., last] with last + width ≤ watermark.
	last := e.bucketOf(watermark.Unix()) - e.width
	if wm := last + e.width; wm > e.wm {
		e.wm = wm
	} else {
		last = e.wm - e.width
	}
	var wg sync.WaitGroup
	for i, s := range e.shards {
		wg.Go(func() { s.advance(e.parts[i], last) })
	}
	wg.Wait()
	for _, s := range e.shards {
		res.Events = append(res.Events, s.events...)
		res.Expectations = append(res.Expectations, s.exps...)
		res.Retired = append(res.Retired, s.retired...)
		res.Ignored += s.late
		res.Explanations = append(res.Explanations, s.expl...)
		s.events, s.exps, s.retired, s.late, s.expl = s.events[:0], s.exps[:0], s.retired[:0], 0, s.expl[:0]
	}
	slices.SortFunc(res.Events, func(a, b Event) int { return eventLess(&a, &b) })
	slices.SortFunc(res.Retired, func(a, b StreamRef) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		if c := strings.Compare(a.Tenant, b.Tenant); c != 0 {
			return c
		}
		return strings.Compare(a.Source, b.Source)
	})
	if e.expect != ExpectNone {
		slices.SortFunc(res.Expectations, func(a, b Expectation) int {
			if c := strings.Compare(a.Tenant, b.Tenant); c != 0 {
				return c
			}
			if c := strings.Compare(a.Source, b.Source); c != 0 {
				return c
			}
			return a.Bucket.Compare(b.Bucket)
		})
	}
	return res
}

// worker returns the shard that owns c's stream, or false when the count is
// not this engine's: of the other clock, or of another instance's shard.
func (e *Engine) worker(c storage.Count) (int, bool) {
	if c.Clock != e.cfg.Clock {
		return 0, false
	}
	h := streamHash(c.Tenant, c.Source)
	if h%uint64(e.cfg.Shards) != uint64(e.cfg.Shard) {
		return 0, false
	}
	return int((h >> 32) % uint64(len(e.shards))), true
}

// Peek judges early silences (see earlySilence) at time at, inside the bucket
// that follows the last judged one, at the slots up to at of every stream
// whose earlier buckets are all judged. counts are that bucket's counts stored
// so far, each with the arrival of its events (storage.Count.Arrival); a
// stream without one has had no events in the bucket before at, which holds
// once the watermark has passed at. Advance judging the bucket later takes
// the same decisions at the same slots from the complete counts, so live
// detection can Peek between buckets and a replay, which does not, still
// produces the same events. Counts are not kept: Advance needs them again.
func (e *Engine) Peek(at time.Time, counts []storage.Count) Result {
	var res Result
	b := e.wm // the start of the next bucket to judge
	if e.wm == math.MinInt64 || e.bucketOf(at.Unix()) != b {
		return res
	}
	firsts := make([]map[streamKey]int64, len(e.shards))
	for _, c := range counts {
		w, ok := e.worker(c)
		if !ok || e.bucketOf(c.Bucket) != b {
			continue
		}
		if firsts[w] == nil {
			firsts[w] = map[streamKey]int64{}
		}
		k := streamKey{c.Tenant, c.Source}
		if f, ok := firsts[w][k]; !ok || max(c.Arrival, 0) < f {
			firsts[w][k] = max(c.Arrival, 0)
		}
	}
	var wg sync.WaitGroup
	for i, s := range e.shards {
		wg.Go(func() { s.peek(b, firsts[i], at.Unix()) })
	}
	wg.Wait()
	for _, s := range e.shards {
		res.Events = append(res.Events, s.events...)
		s.events = s.events[:0]
	}
	slices.SortFunc(res.Events, func(a, b Event) int { return eventLess(&a, &b) })
	return res
}

// PeekSlot returns the latest early-silence slot at or before wm inside the
// bucket after the last judged one, if wm has passed one: when Peek has
// something new to judge.
func (e *Engine) PeekSlot(wm time.Time) (time.Time, bool) {
	b, t := e.wm, wm.Unix()
	if e.wm == math.MinInt64 || e.width < earlySlots+1 || t < b || t >= b+e.width {
		return time.Time{}, false
	}
	k := (t - b) * (earlySlots + 1) / e.width
	if k == 0 {
		return time.Time{}, false
	}
	return time.Unix(b+k*e.width/(earlySlots+1), 0), true
}

func (s *shard) peek(b int64, firsts map[streamKey]int64, until int64) {
	e := s.e
	for k, st := range s.streams {
		if !st.started || st.next != b || st.vol != nil || st.base.n < e.th.minLearned {
			continue
		}
		first, ok := firsts[k]
		if !ok {
			first = noneYet
		}
		if first != 0 && first >= b+e.width/(earlySlots+1) {
			mu, a := e.model.expect(&st.base, b)
			s.earlySilence(st, b, mu, a, first, until)
		}
	}
}

// advance files this shard's counts with their streams and judges every stream
// up to bucket last. Only the shard's goroutine touches its streams.
func (s *shard) advance(counts []storage.Count, last int64) {
	e := s.e
	for _, c := range counts {
		k := streamKey{c.Tenant, c.Source}
		st := s.streams[k]
		if st == nil {
			st = newStream(strings.Clone(c.Tenant), strings.Clone(c.Source))
			s.streams[streamKey{st.tenant, st.source}] = st
		}
		b := e.bucketOf(c.Bucket)
		if st.started && b < st.next {
			s.late++
			continue
		}
		st.add(b, c.Events, c.Lateness, c.Arrival)
	}
	for _, st := range s.streams {
		s.judgeUpTo(st, last)
	}
}

// Thresholds are an engine's decision thresholds, all derived from its
// configuration (see newThresholds).
type Thresholds struct {
	SilenceAlpha float64 // a run of empty buckets is a silence when its probability is below this
	CUSUM        float64 // the late test fires when its log-likelihood-ratio CUSUM exceeds this
	DropCUSUM    float64 // each drop CUSUM (over buckets) fires above this
	DropBlock    int     // the block whose sums teach the drop test how correlated buckets are, in buckets
	HoldBuckets  int     // healthy buckets before a gap resolves
}

// Thresholds returns the engine's decision thresholds.
func (e *Engine) Thresholds() Thresholds {
	return Thresholds{SilenceAlpha: math.Exp(e.th.lnAlpha), CUSUM: e.th.h, DropCUSUM: e.th.hDrop, DropBlock: int(e.blockLen), HoldBuckets: int(e.th.hold)}
}
