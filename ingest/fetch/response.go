package fetch

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
)

// Fetch API versions gapwatch speaks: 4 (Kafka 0.11, record batches,
// isolation levels) through 11 (the last before the flexible encoding).
const (
	fetchAPIKey     = 1
	fetchMinVersion = 4
	fetchMaxVersion = 11
)

// Response is the response to one Fetch request, read from the
// connection as its records are: batch by batch, each batch's records in
// place. It is the Reader's, reused from fetch to fetch.
type Response struct {
	f         *Reader
	r         *bufio.Reader
	frame     int   // bytes of the response frame not yet read
	set       int   // bytes of the record set not yet read
	highWater int64 // the partition's high-water mark
	// lastStable is the partition's last stable offset: read committed, the
	// records up to it are all that can be read yet.
	lastStable int64
	// aborted are the response's aborted transactions by first offset, still
	// ahead; abortedBy their producers whose aborted transaction has begun and
	// not yet ended (its abort marker) in the batches read so far.
	aborted   []abortedTxn
	abortedBy map[int64]bool
	next      int64 // offset after the records read or passed over
	err       error // the partition's error, or why reading stopped
	batch     []byte
	br        batchReader
}

// appendFetchRequest appends a Fetch request (v4–v11) for one partition.
func appendFetchRequest(b []byte, version int16, corr int32, clientID, topic string, partition int32, offset int64, maxBytes int, maxWait time.Duration) []byte {
	b = append(b, 0, 0, 0, 0) // size, set below
	b = binary.BigEndian.AppendUint16(b, fetchAPIKey)
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = appendString(b, clientID)
	b = binary.BigEndian.AppendUint32(b, 0xffffffff) // replica id -1: a consumer
	b = binary.BigEndian.AppendUint32(b, uint32(max(1, maxWait.Milliseconds())))
	b = binary.BigEndian.AppendUint32(b, 1) // min bytes
	b = binary.BigEndian.AppendUint32(b, uint32(maxBytes))
	b = append(b, 1) // isolation: read committed (records of aborted transactions are skipped)
	if version >= 7 {
		b = binary.BigEndian.AppendUint32(b, 0)          // session id: none
		b = binary.BigEndian.AppendUint32(b, 0xffffffff) // session epoch -1: no session
	}
	b = binary.BigEndian.AppendUint32(b, 1) // topics
	b = appendString(b, topic)
	b = binary.BigEndian.AppendUint32(b, 1) // partitions
	b = binary.BigEndian.AppendUint32(b, uint32(partition))
	if version >= 9 {
		b = binary.BigEndian.AppendUint32(b, 0xffffffff) // current leader epoch: unknown
	}
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	if version >= 5 {
		b = binary.BigEndian.AppendUint64(b, 0xffffffffffffffff) // log start offset: n/a for consumers
	}
	b = binary.BigEndian.AppendUint32(b, uint32(maxBytes))
	if version >= 7 {
		b = binary.BigEndian.AppendUint32(b, 0) // forgotten topics
	}
	if version >= 11 {
		b = appendString(b, "") // rack id
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// head reads the response up to the partition's record set.
func (r *Response) head(version int16, corr int32, topic string, partition int32) error {
	size, err := r.fixed(4)
	if err != nil {
		return err
	}
	r.frame = int(int32(binary.BigEndian.Uint32(size)))
	if r.frame < 4 {
		return fmt.Errorf("fetch response of %d bytes", r.frame)
	}
	if b, err := r.take(4); err != nil {
		return err
	} else if id := int32(binary.BigEndian.Uint32(b)); id != corr {
		return fmt.Errorf("fetch response to request %d, want %d", id, corr)
	}
	n := 4 // throttle time
	if version >= 7 {
		n += 2 + 4 // error code, session id
	}
	b, err := r.take(n + 4)
	if err != nil {
		return err
	}
	if version >= 7 {
		if code := int16(binary.BigEndian.Uint16(b[4:])); code != 0 {
			return kafka.Error(code)
		}
	}
	if topics := int32(binary.BigEndian.Uint32(b[n:])); topics != 1 {
		return fmt.Errorf("fetch response for %d topics, want 1", topics)
	}
	if b, err = r.take(2); err != nil {
		return err
	}
	name, err := r.take(int(binary.BigEndian.Uint16(b)))
	if err != nil {
		return err
	}
	if string(name) != topic {
		return fmt.Errorf("fetch response for topic %q, want %q", name, topic)
	}
	// partitions (1), partition, error code, high watermark, last stable
	// offset, log start offset (v5+), aborted transactions.
	n = 4 + 4 + 2 + 8 + 8
	if version >= 5 {
		n += 8
	}
	if b, err = r.take(n + 4); err != nil {
		return err
	}
	if parts, p := int32(binary.BigEndian.Uint32(b)), int32(binary.BigEndian.Uint32(b[4:])); parts != 1 || p != partition {
		return fmt.Errorf("fetch response for %d partitions (first %d), want partition %d", parts, p, partition)
	}
	code := int16(binary.BigEndian.Uint16(b[8:]))
	r.highWater = int64(binary.BigEndian.Uint64(b[10:]))
	r.lastStable = int64(binary.BigEndian.Uint64(b[18:]))
	if err := r.readAborted(int(int32(binary.BigEndian.Uint32(b[n:])))); err != nil {
		return err
	}
	if version >= 11 {
		if _, err := r.take(4); err != nil { // preferred read replica
			return err
		}
	}
	if b, err = r.take(4); err != nil {
		return err
	}
	r.set = max(0, int(int32(binary.BigEndian.Uint32(b)))) // -1: null
	if r.set > r.frame {
		return fmt.Errorf("record set of %d bytes in %d left of the fetch response", r.set, r.frame)
	}
	if code != 0 {
		r.err = kafka.Error(code)
	}
	return nil
}

// fixed reads n bytes outside the frame (its size).
func (r *Response) fixed(n int) ([]byte, error) {
	b, err := r.r.Peek(n)
	if err != nil {
		return nil, err
	}
	r.r.Discard(n)
	return b, nil
}

// take reads n bytes of the frame; the slice is valid until the next read.
func (r *Response) take(n int) ([]byte, error) {
	if n > r.frame {
		return nil, fmt.Errorf("fetch response ends %d bytes early", n-r.frame)
	}
	if n > r.r.Size() {
		return nil, fmt.Errorf("fetch response field of %d bytes", n)
	}
	b, err := r.fixed(n)
	if err != nil {
		return nil, err
	}
	r.frame -= n
	return b, nil
}

func (r *Response) skip(n int) error {
	if n > r.frame {
		return fmt.Errorf("fetch response ends %d bytes early", n-r.frame)
	}
	d, err := r.r.Discard(n)
	r.frame -= d
	return err
}

// Next reads the next record at or after the fetch offset into rec; false at
// the end of the response, or when reading failed (r.err). A record's key and
// value are valid until the next call.
func (r *Response) Next(rec *Record) bool {
	for r.err == nil {
		ok, err := r.br.next(rec)
		switch {
		case err != nil:
			r.err = err
		case ok && rec.Offset < r.f.next:
			// A batch may start before the offset asked for.
		case ok:
			r.next = rec.Offset + 1
			return true
		default:
			// The batch is done: go past its end too (compacted records,
			// transaction markers), then on to the next batch.
			if r.br.base >= 0 {
				r.next = max(r.next, r.br.last+1)
			}
			r.err = r.nextBatch()
		}
	}
	return false
}

// nextBatch reads the next complete batch of the record set into r.br, or
// sets io.EOF at the end of the set (a batch cut at the response's size limit
// is dropped: the next fetch starts there).
func (r *Response) nextBatch() error {
	r.br.clear()
	if r.set < batchLengthEnd {
		return io.EOF
	}
	head, err := r.take(batchLengthEnd)
	if err != nil {
		return err
	}
	r.set -= batchLengthEnd
	n := int(int32(binary.BigEndian.Uint32(head[8:])))
	if n > r.set {
		return io.EOF // cut short
	}
	if n < batchHeaderLen-batchLengthEnd {
		return fmt.Errorf("%w: length %d", errBadBatch, n)
	}
	if n > r.frame {
		return fmt.Errorf("fetch response ends %d bytes early", n-r.frame)
	}
	r.batch = append(r.batch[:0], head...)
	r.batch = append(r.batch, make([]byte, n)...)
	if _, err := io.ReadFull(r.r, r.batch[batchLengthEnd:]); err != nil {
		return err
	}
	r.frame -= n
	r.set -= n
	if err := r.br.reset(r.batch); err != nil {
		return err
	}
	r.filterAborted()
	return nil
}

// abortedTxn is an aborted transaction of a fetch response.
type abortedTxn struct{ producer, first int64 }

// readAborted reads the response's n aborted transactions (-1: null).
func (r *Response) readAborted(n int) error {
	r.aborted = r.aborted[:0]
	if r.abortedBy == nil {
		r.abortedBy = map[int64]bool{}
	}
	clear(r.abortedBy)
	if n > r.frame/16 {
		return fmt.Errorf("fetch response with %d aborted transactions in %d bytes", n, r.frame)
	}
	for range max(0, n) {
		b, err := r.take(16)
		if err != nil {
			return err
		}
		r.aborted = append(r.aborted, abortedTxn{producer: int64(binary.BigEndian.Uint64(b)), first: int64(binary.BigEndian.Uint64(b[8:]))})
	}
	slices.SortFunc(r.aborted, func(a, b abortedTxn) int { return cmp.Compare(a.first, b.first) })
	return nil
}

// filterAborted empties the batch just read when it belongs to an aborted
// transaction, as Kafka's own consumer does read committed: a producer's
// transaction is aborted from its first offset to its marker.
func (r *Response) filterAborted() {
	br := &r.br
	if !br.txn {
		return
	}
	for len(r.aborted) > 0 && r.aborted[0].first <= br.last {
		r.abortedBy[r.aborted[0].producer] = true
		r.aborted = r.aborted[1:]
	}
	switch {
	case br.control:
		delete(r.abortedBy, br.producer) // the transaction's end
	case r.abortedBy[br.producer]:
		br.recs, br.left = nil, 0
		if r.f != nil && r.f.cfg.OnAborted != nil {
			r.f.cfg.OnAborted(br.last - br.base + 1)
		}
	}
}
