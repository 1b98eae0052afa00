package fetch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"time"

	"github.com/segmentio/kafka-go/compress"
)

// A Kafka record batch (message format v2, the only one Kafka 4 stores) as
// it arrives in a fetch response:
//
//	baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 |
//	magic int8 | crc uint32 | attributes int16 | lastOffsetDelta int32 |
//	baseTimestamp int64 | maxTimestamp int64 | producerId int64 |
//	producerEpoch int16 | baseSequence int32 | recordCount int32 | records
//
// The CRC (Castagnoli) covers everything from the attributes on; the records
// are compressed as a whole when the attributes say so. batchLength counts the
// bytes after itself.
const (
	batchLengthEnd = 12 // baseOffset and batchLength
	batchHeaderLen = 61 // through recordCount
	batchMagic     = 16
	batchCRC       = 17
	batchAttrs     = 21
)

const (
	attrCompression   = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maxInflatedBatch bounds what one compressed batch may inflate to, so that a
// compression bomb costs a stalled partition (logged, and the watermark holds),
// not the process. Kafka's default message.max.bytes is 1 MiB; JSON logs
// compress 5–20×.
const maxInflatedBatch = 64 << 20

// errBadBatch marks a record batch that cannot be read: corrupt, or of a
// format gapwatch does not speak. The fetch is dropped and retried.
var errBadBatch = errors.New("bad record batch")

// Record is one Kafka record. Key and Value alias the batch's buffer: they
// are valid until the next call of batchReader.next (nothing downstream keeps
// them: Staged copies names, dead letters copy the value).
type Record struct {
	Offset int64
	Time   time.Time // zero when the record has no timestamp
	Key    []byte    // nil for a null key
	Value  []byte
}

// batchReader reads the records of one record batch in place: no allocation
// per record (kafka-go's Batch.ReadMessage allocates the key, the value and
// the headers of every record and reads its varints byte by byte through a
// bufio.Reader). A batchReader is reused from batch to batch.
type batchReader struct {
	recs     []byte // records not yet read
	left     int    // records not yet read, by the header's count
	base     int64  // base offset
	baseTime int64  // base timestamp (ms)
	appendAt int64  // the broker's append time (ms) when the topic uses LogAppendTime, else -1
	last     int64  // offset of the batch's last record (compaction may have removed it)
	control  bool   // a transaction marker: no data records
	// txn: the batch belongs to a transaction of producer (read-committed fetches
	// skip those of aborted transactions: see fetchResponse.filterAborted).
	txn      bool
	producer int64

	inflated bytes.Buffer // decompressed records, reused
}

// clear forgets the batch: no records, no offsets (base and last -1).
func (r *batchReader) clear() {
	r.recs, r.left, r.base, r.last = nil, 0, -1, -1
}

// reset starts reading the batch b (its baseOffset through its end). It checks
// the frame, the magic byte and the CRC, and decompresses the records.
func (r *batchReader) reset(b []byte) error {
	r.clear()
	if len(b) < batchHeaderLen {
		return fmt.Errorf("%w: %d bytes, a header needs %d", errBadBatch, len(b), batchHeaderLen)
	}
	if n := int(int32(binary.BigEndian.Uint32(b[8:]))); n != len(b)-batchLengthEnd {
		return fmt.Errorf("%w: length field %d, have %d bytes", errBadBatch, n, len(b)-batchLengthEnd)
	}
	if m := b[batchMagic]; m != 2 {
		return fmt.Errorf("%w: message format v%d (before Kafka 0.11) is not supported", errBadBatch, m)
	}
	if want, got := binary.BigEndian.Uint32(b[batchCRC:]), crc32.Checksum(b[batchAttrs:], castagnoli); want != got {
		return fmt.Errorf("%w: CRC %08x, computed %08x", errBadBatch, want, got)
	}
	attrs := binary.BigEndian.Uint16(b[batchAttrs:])
	r.base = int64(binary.BigEndian.Uint64(b[0:]))
	r.last = r.base + int64(int32(binary.BigEndian.Uint32(b[23:])))
	r.baseTime = int64(binary.BigEndian.Uint64(b[27:]))
	r.appendAt = -1
	if attrs&attrLogAppendTime != 0 {
		r.appendAt = int64(binary.BigEndian.Uint64(b[35:]))
	}
	r.control = attrs&attrControl != 0
	r.txn = attrs&attrTransactional != 0
	r.producer = int64(binary.BigEndian.Uint64(b[43:]))
	count := int(int32(binary.BigEndian.Uint32(b[57:])))
	if count < 0 || count > len(b) { // a record takes at least 7 bytes
		return fmt.Errorf("%w: record count %d in %d bytes", errBadBatch, count, len(b))
	}
	recs := b[batchHeaderLen:]
	if c := compress.Compression(attrs & attrCompression); c != compress.None {
		codec := c.Codec()
		if codec == nil {
			return fmt.Errorf("%w: unknown compression codec %d", errBadBatch, c)
		}
		rd := codec.NewReader(bytes.NewReader(recs))
		r.inflated.Reset()
		_, err := r.inflated.ReadFrom(io.LimitReader(rd, maxInflatedBatch+1))
		rd.Close()
		if err != nil {
			return fmt.Errorf("%w: decompressing (%s): %v", errBadBatch, c, err)
		}
		if r.inflated.Len() > maxInflatedBatch {
			return fmt.Errorf("%w: its records inflate past %d MiB (%s)", errBadBatch, maxInflatedBatch>>20, c)
		}
		recs = r.inflated.Bytes()
	}
	r.recs, r.left = recs, count
	if r.control {
		r.recs, r.left = nil, 0
	}
	return nil
}

// next reads the next record into rec; false at the end of the batch or on
// a malformed record (err says which).
func (r *batchReader) next(rec *Record) (ok bool, err error) {
	if r.left == 0 {
		return false, nil
	}
	b := r.recs
	length, n := binary.Varint(b)
	if n <= 0 || length < 0 || length > int64(len(b)-n) {
		return false, r.malformed("length")
	}
	b, r.recs = b[n:n+int(length)], b[n+int(length):]
	r.left--
	if len(b) < 1 {
		return false, r.malformed("attributes")
	}
	b = b[1:] // record attributes: unused
	tsDelta, n := binary.Varint(b)
	if n <= 0 {
		return false, r.malformed("timestamp")
	}
	b = b[n:]
	offDelta, n := binary.Varint(b)
	if n <= 0 || offDelta < 0 || offDelta > math.MaxInt32 { // a varint: 32 bits
		return false, r.malformed("offset")
	}
	b = b[n:]
	if rec.Key, b, err = r.bytesField(b, "key"); err != nil {
		return false, err
	}
	if rec.Value, b, err = r.bytesField(b, "value"); err != nil {
		return false, err
	}
	// Headers follow; gapwatch uses none of them, but a record whose headers
	// do not parse is as broken as one whose value does not.
	headers, n := binary.Varint(b)
	if n <= 0 || headers < 0 || headers > int64(len(b)) {
		return false, r.malformed("header count")
	}
	for b = b[n:]; headers > 0; headers-- {
		if _, b, err = r.bytesField(b, "header key"); err != nil {
			return false, err
		}
		if _, b, err = r.bytesField(b, "header value"); err != nil {
			return false, err
		}
	}
	rec.Offset = r.base + offDelta
	ms := r.baseTime + tsDelta
	if r.appendAt >= 0 {
		ms = r.appendAt
	}
	rec.Time = time.Time{}
	if ms > 0 {
		rec.Time = time.UnixMilli(ms).UTC()
	}
	return true, nil
}

func (r *batchReader) bytesField(b []byte, what string) (field, rest []byte, err error) {
	n, k := binary.Varint(b)
	switch {
	case k <= 0 || n < -1 || n > int64(len(b)-k):
		return nil, nil, r.malformed(what)
	case n == -1:
		return nil, b[k:], nil
	}
	return b[k : k+int(n) : k+int(n)], b[k+int(n):], nil
}

func (r *batchReader) malformed(what string) error {
	r.recs, r.left = nil, 0
	return fmt.Errorf("%w: record of batch at offset %d: bad %s", errBadBatch, r.base, what)
}
