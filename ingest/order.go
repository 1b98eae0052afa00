package ingest

import (
	"slices"
	"strings"
	"sync"
)

// streamOrder ranks the registry's streams by name for Counter.Take, which
// hands the store its counts sorted by (tenant, source, clock, bucket):
// ClickHouse sorts every insert by the table's key, and skips that for a
// block that is already sorted (a third of its CPU for our inserts; see
// docs/ingest-speed.md). The order is kept from Take to Take, so a Take sorts
// only the streams new since the last one and merges them in.
//
// A stream's key (tenant \x00 source) orders as (tenant, source): names hold
// no control characters, so \x00 sorts before every byte of a longer tenant.
type streamOrder struct {
	mu    sync.Mutex
	keys  []string // ranked streams' keys, sorted
	ids   []uint32 // their ids
	gens  []uint32 // their entries' gen when ranked: a changed gen means the id was forgotten or reused
	rank  []int32  // by id: position in keys (valid only if ids and gens there still match)
	fresh []uint32 // scratch: ids without a valid rank
	spare []string
	spid  []uint32
	spgen []uint32

	// Counter.Take's buffers.
	touched []uint32
	refs    []cellRef
	sorted  []cellRef
	start   []int32
}

// notRanked marks an id collected as fresh during one update.
const notRanked = -2

// update gives every id in touched a valid rank and returns the ranks by id.
// The ids in touched are held by the caller (their names are stable; see
// Streams.entry); the other ranked ids may be forgotten or reused by other
// streams meanwhile, which their entries' gen tells without reading names
// that may be changing.
func (o *streamOrder) update(s *Streams, touched []uint32) []int32 {
	o.fresh = o.fresh[:0]
	for _, id := range touched {
		for int(id) >= len(o.rank) {
			o.rank = append(o.rank, -1)
		}
		r := o.rank[id]
		if r == notRanked || r >= 0 && int(r) < len(o.ids) && o.ids[r] == id && o.gens[r] == s.entry(id).gen.Load() {
			continue
		}
		o.rank[id] = notRanked
		o.fresh = append(o.fresh, id)
	}
	if len(o.fresh) == 0 {
		return o.rank
	}
	slices.SortFunc(o.fresh, func(a, b uint32) int { return strings.Compare(s.entry(a).key, s.entry(b).key) })

	// Merge the fresh ids into the ranked ones that are still current.
	keys, ids, gens := o.spare[:0], o.spid[:0], o.spgen[:0]
	i, j := 0, 0
	for i < len(o.keys) || j < len(o.fresh) {
		if i < len(o.keys) {
			id := o.ids[i]
			if o.gens[i] != s.entry(id).gen.Load() || o.rank[id] == notRanked {
				i++ // forgotten, or its id now names another stream
				continue
			}
			if j == len(o.fresh) || o.keys[i] < s.entry(o.fresh[j]).key {
				keys, ids, gens = append(keys, o.keys[i]), append(ids, id), append(gens, o.gens[i])
				i++
				continue
			}
		}
		id := o.fresh[j]
		e := s.entry(id)
		keys, ids, gens = append(keys, e.key), append(ids, id), append(gens, e.gen.Load())
		j++
	}
	o.spare, o.spid, o.spgen = o.keys[:0], o.ids[:0], o.gens[:0]
	o.keys, o.ids, o.gens = keys, ids, gens
	for r, id := range ids {
		o.rank[id] = int32(r)
	}
	return o.rank
}
