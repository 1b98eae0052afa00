package live

import (
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/storage"
)

// StreamStatus is a stream's state as of the last stored step.
type StreamStatus struct {
	Tenant, Source string
	// Status is ok or learning (the engine's state of the last judged
	// bucket); gap, drop or late while the stream has an open gap of that
	// kind (silence, drop, late), planned while that gap is planned
	// (maintenance window); retired once the engine retired the stream.
	Status       string
	LastSeen     time.Time // start of the last bucket with events
	EventsPerMin float64   // expected rate in the last judged bucket (observed while learning)
	// HistoryHours is how much of the stream the baseline has learned from:
	// from its first judged bucket (afresh after a retirement) to its last,
	// at most the history a restart replays (Config.History), so that a
	// restart does not change it. Its hourly profile is used after two
	// complete days, the daily one after two complete weeks
	// (detect/baseline.go). 0 once retired.
	HistoryHours float64
	// Profile and Weekend are what the engine judged the last bucket
	// against (detect.Expectation): detect.ProfileShortTerm and
	// detect.WeekendRecent once retired, as it would start again.
	Profile, Weekend string
}

type streamKey struct{ tenant, source string }

// openGap is a gap of a stream that is open, as stored.
type openGap struct {
	id      string
	kind    detect.Kind
	planned bool
}

// streamRow is what the table knows of a stream.
type streamRow struct {
	StreamStatus        // Status is set by commit
	state        string // the engine's state of its last judged bucket, or "retired"
	since, to    int64  // its first judged bucket's start and its last judged bucket's end (Unix seconds)
	gaps         []openGap
}

// status is the stream's status: from its open gaps (the ones stored), else
// from the engine's state. A stream has at most one open silence or drop and
// one open late gap; the first takes precedence, as in the engine's state.
func (r *streamRow) status() string {
	if r.state == "retired" {
		return "retired"
	}
	var vol, late *openGap
	for i := range r.gaps {
		if r.gaps[i].kind == detect.KindLate {
			late = &r.gaps[i]
		} else {
			vol = &r.gaps[i]
		}
	}
	switch {
	case vol != nil && vol.planned:
		return "planned"
	case vol != nil && vol.kind == detect.KindDrop:
		return "drop"
	case vol != nil:
		return "gap"
	case late != nil && late.planned:
		return "planned"
	case late != nil:
		return "late"
	}
	return r.state
}

// statusTable keeps every stream's status from the engine's judged buckets
// and the step's gap alerts, retired streams included. Run's goroutine owns
// it. The API reads a statusView, which changes only at commit: when the step
// that holds the changes is stored (Detector.step), so a stream's status and
// its open gap change together as far as the API and the alert topic can
// tell.
type statusTable struct {
	width   int64
	history int64 // seconds of history a restart replays: retired streams last seen before it are forgotten
	streams map[streamKey]*streamRow
	changed map[streamKey]bool // since the last commit
	born    []born             // rows started afresh in the step being taken in
	swept   int64              // judged time of the last forgetRetired sweep
}

func newStatusTable(width int64, history time.Duration) *statusTable {
	return &statusTable{width: width, history: int64(history / time.Second),
		streams: map[streamKey]*streamRow{}, changed: map[streamKey]bool{}}
}

// judged takes in a step's judged buckets: every stream's state, rate and
// last bucket with events, and the streams retired. counts are the step's
// counts: a stream's first judged bucket is its first count (a replay's
// expectations hold only each step's last bucket, detect.ExpectLast).
func (t *statusTable) judged(res detect.Result, counts []storage.Count) {
	perMin := 60 / float64(t.width)
	var judged int64 // the latest bucket start judged in this step
	for _, x := range res.Expectations {
		b := x.Bucket.Unix()
		judged = max(judged, b)
		k := streamKey{x.Tenant, x.Source}
		r, ok := t.streams[k]
		if !ok || x.State == "learning" && r.state != "learning" {
			// New, or learning afresh after its retirement.
			fresh := &streamRow{StreamStatus: StreamStatus{Tenant: x.Tenant, Source: x.Source}, since: b}
			floor := int64(math.MinInt64)
			if ok {
				fresh.LastSeen = r.LastSeen
				floor = r.to
			}
			r = fresh
			t.streams[k] = r
			t.born = append(t.born, born{r, floor})
		}
		r.state = x.State
		r.to = b + t.width
		r.Profile, r.Weekend = x.Profile, x.Weekend
		r.EventsPerMin = x.Expected * perMin
		if x.State == "learning" {
			r.EventsPerMin = float64(x.Observed) * perMin
		}
		if x.Observed > 0 {
			r.LastSeen = x.Bucket
		}
		if !x.LastEvents.IsZero() { // a replay's summary (detect.ExpectLast)
			r.LastSeen = x.LastEvents
		}
		t.changed[k] = true
	}
	t.firstCounts(counts)
	t.retire(res)
	t.forgetRetired(judged)
}

// born is a row started afresh in a step; floor is the end of the stream's
// previous life, if it had one.
type born struct {
	row   *streamRow
	floor int64
}

// firstCounts sets the first judged bucket of the streams born in the step
// from its counts.
func (t *statusTable) firstCounts(counts []storage.Count) {
	if len(t.born) == 0 {
		return
	}
	rows := make(map[streamKey]born, len(t.born))
	for _, b := range t.born {
		rows[streamKey{b.row.Tenant, b.row.Source}] = b
	}
	t.born = t.born[:0]
	for _, c := range counts {
		if b, ok := rows[streamKey{c.Tenant, c.Source}]; ok && c.Bucket < b.row.since && c.Bucket >= b.floor {
			b.row.since = bucketStart(c.Bucket, t.width)
		}
	}
}

// retire shows the streams the engine retired in the step as "retired",
// unless one sent again later in the same step (then it is learning afresh).
func (t *statusTable) retire(res detect.Result) {
	if len(res.Retired) == 0 {
		return
	}
	after := make(map[streamKey]time.Time, len(res.Retired)) // a stream's last judged bucket start in this step
	for _, x := range res.Expectations {
		after[streamKey{x.Tenant, x.Source}] = x.Bucket
	}
	for _, rt := range res.Retired {
		k := streamKey{rt.Tenant, rt.Source}
		if r, ok := t.streams[k]; ok && after[k].Before(rt.At) {
			r.state, r.EventsPerMin, r.gaps = "retired", 0, nil
			r.Profile, r.Weekend = detect.ProfileShortTerm, detect.WeekendRecent
			t.changed[k] = true
		}
	}
}

// gapAlerts takes in the open and resolved gaps of a step's alerts as stored
// (planned or not).
func (t *statusTable) gapAlerts(alerts []storage.Alert) {
	for _, a := range alerts {
		if a.GapID == "" {
			continue
		}
		k := streamKey{a.Tenant, a.Source}
		r := t.streams[k]
		if r == nil { // opened by a peek before the stream was judged: cannot be
			continue
		}
		if a.Type == detect.TypeGapUpdated { // a drop may have become a silence
			for i := range r.gaps {
				if r.gaps[i].id == a.GapID && r.gaps[i].kind != detect.Kind(a.Kind) {
					r.gaps[i].kind = detect.Kind(a.Kind)
					t.changed[k] = true
				}
			}
			continue
		}
		if a.Type != detect.TypeGapOpened && a.Type != detect.TypeGapResolved {
			continue
		}
		r.gaps = slices.DeleteFunc(r.gaps, func(g openGap) bool { return g.id == a.GapID })
		if a.Type == detect.TypeGapOpened {
			r.gaps = append(r.gaps, openGap{id: a.GapID, kind: detect.Kind(a.Kind), planned: a.Planned})
		}
		t.changed[k] = true
	}
}

// forgetRetired drops, once per hour of judged time, the retired streams last
// seen before the history a restart replays: the table stays bounded by the
// streams of that window, and a restart rebuilds the same table. judged is
// the latest bucket start of the step (Unix seconds).
func (t *statusTable) forgetRetired(judged int64) {
	if judged < t.swept+3600 {
		return
	}
	t.swept = judged
	horizon := time.Unix(judged-t.history, 0)
	for k, r := range t.streams {
		if r.state == "retired" && r.LastSeen.Before(horizon) {
			delete(t.streams, k)
			t.changed[k] = true
		}
	}
}

// commit makes what changed since the last commit visible in v.
func (t *statusTable) commit(v *statusView) {
	if len(t.changed) == 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for k := range t.changed {
		r, ok := t.streams[k]
		if !ok {
			delete(v.streams, k)
			continue
		}
		r.Status = r.status()
		r.HistoryHours = 0
		if r.Status != "retired" {
			r.HistoryHours = float64(min(r.to-r.since, t.history)) / 3600
		}
		v.streams[k] = r.StreamStatus
	}
	clear(t.changed)
}

// statusView is what the API reads: the streams' statuses as last committed,
// and whether detection runs. Safe for concurrent use.
type statusView struct {
	mu      sync.Mutex
	ready   bool
	streams map[streamKey]StreamStatus
}

func newStatusView() *statusView { return &statusView{streams: map[streamKey]StreamStatus{}} }

func (v *statusView) setReady() {
	v.mu.Lock()
	v.ready = true
	v.mu.Unlock()
}

func (v *statusView) isReady() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.ready
}

// list returns the statuses of the streams, optionally of one tenant and
// source, sorted by tenant and source.
func (v *statusView) list(tenant, source string) []StreamStatus {
	v.mu.Lock()
	out := make([]StreamStatus, 0, len(v.streams))
	for _, s := range v.streams {
		if (tenant == "" || s.Tenant == tenant) && (source == "" || s.Source == source) {
			out = append(out, s)
		}
	}
	v.mu.Unlock()
	slices.SortFunc(out, func(a, b StreamStatus) int {
		if c := strings.Compare(a.Tenant, b.Tenant); c != 0 {
			return c
		}
		return strings.Compare(a.Source, b.Source)
	})
	return out
}
