package ingest

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// Streams admits new streams up to the configured caps and gives each a small
// id for the counter's keys. It lives as long as the process, across
// consumer-group generations. A stream with no events for Limits.StreamIdle of
// arrival time stops counting towards the caps: it is forgotten when the caps
// are reached and a new stream asks to be admitted. Safe for concurrent use.
//
// Lookups go to one of registryParts maps by the key's hash, each with its own
// lock, so that an admission (which writes one map) stops only the lookups of
// that part: with one lock, every admission stopped every partition goroutine,
// and a busy process admits tens of thousands of streams when it starts.
type Streams struct {
	max, perTenant int
	// reserved streams of max are kept for the priority tenants.
	reserved int
	priority map[string]bool
	// atCap is the tenants refused a stream by the caps since their last
	// admission, each with whether the global cap refused it (bounded by the
	// streams' count; for metrics and alerts).
	atCap map[string]bool
	full  bool // the last admission refused for the global cap
	// globalFull: the global cap refused a stream since the tenants that are
	// not priority tenants last had room under it (for alerts).
	globalFull bool
	// onCap, if set, hears of each tenant first refused by a cap and of each
	// admitted again, and of the global cap clearing (under mu).
	onCap func(capEvent)
	idle  int64 // seconds of arrival time
	seed  maphash.Seed
	parts [registryParts]registryPart

	// mu serialises admissions and sweeps; it guards the fields below and
	// every write to the parts' maps and to entries' names.
	mu       sync.Mutex
	admitted int
	// The entries by id, in chunks that never move: Counter.Take reads the
	// names of the ids it takes without a lock.
	chunks   []atomic.Pointer[[entryChunk]streamEntry]
	next     uint32   // ids handed out so far
	free     []uint32 // ids of forgotten streams, for reuse
	byTenant map[string]int
	newest   atomic.Int64 // newest arrival bucket seen
	swept    int64        // newest at the last sweep
	// Takes of each lane, started and completed (by the counters of every
	// generation, one after the other): see sweep.
	started, completed [counterLanes]atomic.Int64
	orders             [counterLanes]streamOrder // for each lane's Takes
}

// registryParts is how many maps the registry's lookups are spread over.
const registryParts = 32

type registryPart struct {
	mu  sync.RWMutex
	ids map[string]uint32 // tenant \x00 source
	_   [32]byte          // one part per cache line
}

type streamEntry struct {
	tenant, source string
	key            string       // tenant \x00 source; "" once forgotten
	last           atomic.Int64 // newest arrival bucket with events
	// The Takes started in each lane at its last event there (see sweep).
	takes [counterLanes]atomic.Int64
	gen   atomic.Uint32 // changes when the id is forgotten or given to a stream
}

// entryChunk is how many entries a chunk of Streams.chunks holds.
const entryChunk = 1 << 12

// NewStreams returns an empty registry with the caps of l.
func NewStreams(l Limits) *Streams {
	l = l.WithDefaults()
	// An id is new only when none is free, so ids stay below MaxStreams.
	s := &Streams{max: l.MaxStreams, perTenant: l.MaxStreamsPerTenant, idle: int64(l.StreamIdle / time.Second),
		reserved: l.ReservedStreams, priority: map[string]bool{}, atCap: map[string]bool{},
		seed: maphash.MakeSeed(), byTenant: map[string]int{},
		chunks: make([]atomic.Pointer[[entryChunk]streamEntry], (l.MaxStreams+entryChunk-1)/entryChunk)}
	for i := range s.parts {
		s.parts[i].ids = map[string]uint32{}
	}
	for _, t := range l.PriorityTenants {
		s.priority[t] = true
	}
	return s
}

// CapPressure returns how full the global cap is (admitted streams over
// MaxStreams), how many tenants were refused a stream by a cap since they
// last got one, and whether the global cap refused the last stream it saw.
func (s *Streams) CapPressure() (used float64, tenantsAtCap int, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return float64(s.admitted) / float64(s.max), len(s.atCap), s.full
}

// room is how many streams tenant may still take under the global cap: all
// of it for a priority tenant, less the reserve for the others.
func (s *Streams) room(tenant []byte) int {
	if s.priority[string(tenant)] {
		return s.max - s.admitted
	}
	return s.max - s.reserved - s.admitted
}

// entry returns id's entry. Its names may be read without a lock by whoever
// holds the id from a lookup: they do not change until the id is forgotten,
// which waits for the Takes that may still hold it (see sweep).
func (s *Streams) entry(id uint32) *streamEntry {
	return &s.chunks[id/entryChunk].Load()[id%entryChunk]
}

func (s *Streams) part(key []byte) *registryPart {
	return &s.parts[maphash.Bytes(s.seed, key)%registryParts]
}

// Len returns the number of admitted streams.
func (s *Streams) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.admitted
}

// id returns the id of the stream key (tenant \x00 source), admitting it if it
// is new and the caps allow; ok is false when they do not. bucket is the
// arrival bucket of the event: it marks the stream as in use.
// The caller counts in a shard of lane, under the shard's lock.
func (s *Streams) id(key []byte, tenantLen int, bucket int64, lane int) (id uint32, ok bool) {
	p := s.part(key)
	p.mu.RLock()
	id, ok = p.ids[string(key)]
	if ok {
		s.touch(s.entry(id), bucket, lane) // under p.mu: a sweep sees it
	}
	p.mu.RUnlock()
	if ok {
		return id, true
	}
	return s.admit(p, key, tenantLen, bucket, lane)
}

// touch marks e as in use by lane.
func (s *Streams) touch(e *streamEntry, bucket int64, lane int) {
	if e.last.Load() < bucket {
		e.last.Store(bucket) // racing stores of nearby buckets: either is fine
	}
	// Shards of one lane apply concurrently, while a Take may begin: keep the
	// largest (sweep relies on it).
	takes, t := &e.takes[lane], s.started[lane].Load()
	for old := takes.Load(); old < t && !takes.CompareAndSwap(old, t); old = takes.Load() {
	}
	if s.newest.Load() < bucket {
		s.newest.Store(bucket)
	}
}

func (s *Streams) admit(p *registryPart, key []byte, tenantLen int, bucket int64, lane int) (uint32, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := p.ids[string(key)]; ok { // admitted meanwhile (maps change only under s.mu)
		s.touch(s.entry(id), bucket, lane)
		return id, true
	}
	if s.newest.Load() < bucket {
		s.newest.Store(bucket)
	}
	tenant := key[:tenantLen]
	if s.room(tenant) <= 0 || s.byTenant[string(tenant)] >= s.perTenant {
		s.sweep()
		if s.room(tenant) <= 0 || s.byTenant[string(tenant)] >= s.perTenant {
			s.refused(string(tenant), s.room(tenant) <= 0, bucket)
			return 0, false
		}
	}
	s.admitting(string(tenant), bucket)
	var id uint32
	if n := len(s.free); n > 0 {
		id, s.free = s.free[n-1], s.free[:n-1]
	} else {
		id = s.next
		s.next++
		if c := &s.chunks[id/entryChunk]; c.Load() == nil {
			c.Store(new([entryChunk]streamEntry))
		}
	}
	e := s.entry(id)
	e.gen.Add(1)
	e.key = string(key)
	e.tenant, e.source = e.key[:tenantLen], e.key[tenantLen+1:]
	e.last.Store(bucket)
	for l := range e.takes {
		e.takes[l].Store(-1) // unused
	}
	e.takes[lane].Store(s.started[lane].Load())
	p.mu.Lock()
	p.ids[e.key] = id
	p.mu.Unlock()
	s.admitted++
	s.byTenant[e.tenant]++
	return id, true
}

// refused records tenant's refusal by a cap (the global one if global); s.mu is held.
func (s *Streams) refused(tenant string, global bool, bucket int64) {
	s.full = global
	// The global cap is reported when it starts refusing, and with each
	// tenant it refuses first (they join the alert's sample and count).
	report := global && !s.globalFull
	if global {
		s.globalFull = true
	}
	if _, ok := s.atCap[tenant]; !ok && len(s.atCap) < s.max {
		s.atCap[tenant] = global
		report = true
	}
	if report && s.onCap != nil {
		s.onCap(capEvent{tenant: tenant, global: global, at: bucket})
	}
}

// admitting records that tenant gets a stream; s.mu is held.
func (s *Streams) admitting(tenant string, bucket int64) {
	s.full = false
	global, ok := s.atCap[tenant]
	delete(s.atCap, tenant)
	if ok && !global && s.onCap != nil {
		s.onCap(capEvent{tenant: tenant, cleared: true, at: bucket})
	}
	// The global cap has cleared once every tenant has room under it again.
	if s.globalFull && s.max-s.reserved-s.admitted > 0 {
		s.globalFull = false
		if s.onCap != nil {
			s.onCap(capEvent{tenant: tenant, global: true, cleared: true, at: bucket})
		}
	}
}

// sweep forgets the streams idle for StreamIdle, at most once per minute of
// arrival time; s.mu is held.
//
// A stream whose id may still be in a count pending in a lane, or in a batch
// a lane's Take is building, is never forgotten. Its last event in lane l
// came when s.started[l] was k, so its counts there are taken by Take k or
// k+1 of the lane (k if that Take had begun but not yet reached its shard):
// once s.completed[l] passes k, the lane holds it no more.
func (s *Streams) sweep() {
	newest := s.newest.Load()
	if newest < s.swept+60 {
		return
	}
	s.swept = newest
	var completed [counterLanes]int64
	for l := range completed {
		completed[l] = s.completed[l].Load()
	}
	idle := func(e *streamEntry) bool {
		if e.key == "" || e.last.Load() > newest-s.idle {
			return false
		}
		for l := range e.takes {
			if e.takes[l].Load() >= completed[l] {
				return false
			}
		}
		return true
	}
	for id := range s.next {
		e := s.entry(id)
		if !idle(e) {
			continue
		}
		// Lookups touch under their part's lock: once it is held, a stream
		// still idle stays so until it is gone from the map.
		p := s.part([]byte(e.key))
		p.mu.Lock()
		if !idle(e) {
			p.mu.Unlock()
			continue
		}
		delete(p.ids, e.key)
		p.mu.Unlock()
		s.admitted--
		if s.byTenant[e.tenant]--; s.byTenant[e.tenant] == 0 {
			delete(s.byTenant, e.tenant)
		}
		e.key, e.tenant, e.source = "", "", ""
		e.gen.Add(1)
		s.free = append(s.free, id)
	}
}

// name returns the tenant and source of id (see entry).
func (s *Streams) name(id uint32) (tenant, source string) {
	e := s.entry(id)
	return e.tenant, e.source
}
