package live

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/storage"
)

// StreamStatus is a stream's state after its last judged bucket.
type StreamStatus struct {
	Tenant, Source string
	Status         string    // ok, gap, drop, late, learning (detect.Expectation.State), planned or retired
	LastSeen       time.Time // start of the last bucket with events
	EventsPerMin   float64   // expected rate in the last judged bucket (observed while learning)
}

type streamKey struct{ tenant, source string }

// statusTable keeps every stream's status from the engine's judged buckets,
// retired streams included. Run's goroutine owns it; what changed reaches
// the API's statusView by commit.
type statusTable struct {
	perMin  float64 // buckets per minute
	history int64   // seconds of history a restart replays: retired streams last seen before it are forgotten
	streams map[streamKey]StreamStatus
	changed map[streamKey]bool // since the last commit
	swept   int64              // judged time of the last forgetRetired sweep
}

func newStatusTable(width int64, history time.Duration) *statusTable {
	return &statusTable{perMin: 60 / float64(width), history: int64(history / time.Second),
		streams: map[streamKey]StreamStatus{}, changed: map[streamKey]bool{}}
}

// judged takes in a step's judged buckets: every stream's state, rate and last
// bucket with events, and the streams retired; silences are the maintenance
// windows.
func (t *statusTable) judged(res detect.Result, silences []storage.Silence) {
	var judged int64 // the latest bucket start judged in this step
	for _, x := range res.Expectations {
		judged = max(judged, x.Bucket.Unix())
		k := streamKey{x.Tenant, x.Source}
		s, ok := t.streams[k]
		if !ok {
			s = StreamStatus{Tenant: x.Tenant, Source: x.Source}
		}
		s.Status = x.State
		if x.State != "ok" && x.State != "learning" {
			for _, sl := range silences {
				if sl.Covers(x.Tenant, x.Source, x.Bucket) {
					s.Status = "planned"
					break
				}
			}
		}
		s.EventsPerMin = x.Expected * t.perMin
		if x.State == "learning" {
			s.EventsPerMin = float64(x.Observed) * t.perMin
		}
		if x.Observed > 0 {
			s.LastSeen = x.Bucket
		}
		if !x.LastEvents.IsZero() { // a replay's summary (detect.ExpectLast)
			s.LastSeen = x.LastEvents
		}
		t.set(k, s)
	}
	t.retire(res)
	t.forgetRetired(judged)
}

func (t *statusTable) set(k streamKey, s StreamStatus) {
	t.streams[k] = s
	t.changed[k] = true
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
	for _, r := range res.Retired {
		k := streamKey{r.Tenant, r.Source}
		if s, ok := t.streams[k]; ok && after[k].Before(r.At) {
			s.Status = "retired"
			s.EventsPerMin = 0
			t.set(k, s)
		}
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
	for k, s := range t.streams {
		if s.Status == "retired" && s.LastSeen.Before(horizon) {
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
		if s, ok := t.streams[k]; ok {
			v.streams[k] = s
		} else {
			delete(v.streams, k)
		}
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
