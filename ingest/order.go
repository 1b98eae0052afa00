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
	rank  []int32  // by id: position in keys (valid only if keys and ids there still match)
	fresh []uint32 // scratch: ids without a valid rank
	spare []string
	spid  []uint32

	// Counter.Take's buffers.
	touched []uint32
	refs    []cellRef
	sorted  []cellRef
	start   []int32
}

// notRanked marks an id collected as fresh during one update.
const notRanked = -2

// update gives every id in touched a valid rank and returns the ranks by id.
// entries is the registry's (s.mu held for reading by the caller); a forgotten
// stream (key "") or an id reused by another stream loses its old position.
func (o *streamOrder) update(entries []streamEntry, touched []uint32) []int32 {
	for len(o.rank) < len(entries) {
		o.rank = append(o.rank, -1)
	}
	o.fresh = o.fresh[:0]
	for _, id := range touched {
		r := o.rank[id]
		if r == notRanked || r >= 0 && int(r) < len(o.ids) && o.ids[r] == id && o.keys[r] == entries[id].key {
			continue
		}
		o.rank[id] = notRanked
		o.fresh = append(o.fresh, id)
	}
	if len(o.fresh) == 0 {
		return o.rank
	}
	slices.SortFunc(o.fresh, func(a, b uint32) int { return strings.Compare(entries[a].key, entries[b].key) })

	// Merge the fresh ids into the ranked ones that are still current.
	keys, ids := o.spare[:0], o.spid[:0]
	i, j := 0, 0
	for i < len(o.keys) || j < len(o.fresh) {
		if i < len(o.keys) {
			id := o.ids[i]
			if int(id) >= len(entries) || entries[id].key != o.keys[i] || o.rank[id] == notRanked {
				i++ // forgotten, or its id now names another stream
				continue
			}
			if j == len(o.fresh) || o.keys[i] < entries[o.fresh[j]].key {
				keys, ids = append(keys, o.keys[i]), append(ids, id)
				i++
				continue
			}
		}
		id := o.fresh[j]
		keys, ids = append(keys, entries[id].key), append(ids, id)
		j++
	}
	o.spare, o.spid = o.keys[:0], o.ids[:0]
	o.keys, o.ids = keys, ids
	for r, id := range ids {
		o.rank[id] = int32(r)
	}
	return o.rank
}
