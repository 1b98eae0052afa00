package fetch

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The batches and responses of these tests are encoded by franz-go's kmsg, an
// implementation of the Kafka protocol independent of ours.

type testRecord struct {
	offsetDelta int32
	tsDelta     int64
	key, value  []byte
	headers     []kmsg.Header
}

type testBatch struct {
	base     int64
	baseTime int64
	attrs    int16
	codec    compress.Compression
	last     int32 // last offset delta; defaults to the last record's
	recs     []testRecord
}

// encode returns the batch as it stands in a fetch response.
func (tb testBatch) encode(t testing.TB) []byte {
	var recs []byte
	last := tb.last
	for _, r := range tb.recs {
		body := (&kmsg.Record{TimestampDelta64: r.tsDelta, OffsetDelta: r.offsetDelta, Key: r.key, Value: r.value, Headers: r.headers}).AppendTo(nil)
		// Record.AppendTo writes the Length it is given first: a zero varint (one byte).
		recs = binary.AppendVarint(recs, int64(len(body)-1))
		recs = append(recs, body[1:]...)
		last = max(last, r.offsetDelta)
	}
	if tb.codec != 0 {
		var buf bytes.Buffer
		w := tb.codec.Codec().NewWriter(&buf)
		_, err := w.Write(recs)
		require.NoError(t, err)
		require.NoError(t, w.Close())
		recs = buf.Bytes()
	}
	maxTime := tb.baseTime
	if len(tb.recs) > 0 {
		maxTime += tb.recs[len(tb.recs)-1].tsDelta
	}
	b := (&kmsg.RecordBatch{
		FirstOffset: tb.base, Magic: 2, Attributes: tb.attrs | int16(tb.codec), LastOffsetDelta: last,
		FirstTimestamp: tb.baseTime, MaxTimestamp: maxTime, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(tb.recs)), Records: recs,
	}).AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-batchLengthEnd))
	binary.BigEndian.PutUint32(b[batchCRC:], crc32.Checksum(b[batchAttrs:], castagnoli))
	return b
}

// readAll reads every record of the batch b, copying key and value.
func readAll(b []byte) ([]Record, error) {
	var br batchReader
	if err := br.reset(b); err != nil {
		return nil, err
	}
	var out []Record
	var rec Record
	for {
		ok, err := br.next(&rec)
		if !ok {
			return out, err
		}
		rec.Key, rec.Value = bytes.Clone(rec.Key), bytes.Clone(rec.Value)
		out = append(out, rec)
	}
}

func TestBatchReaderReadsRecords(t *testing.T) {
	base := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC).UnixMilli()
	recs := []testRecord{
		{0, 0, []byte("k0"), []byte(`{"tenant":"a"}`), nil},
		{1, 250, nil, []byte(`{"tenant":"b"}`), []kmsg.Header{{Key: "h", Value: []byte("v")}}},
		{3, 1000, []byte{}, []byte{}, nil}, // offset 2 compacted away; an empty key is not a null key
	}
	want := []Record{
		{Offset: 100, Time: time.UnixMilli(base).UTC(), Key: []byte("k0"), Value: []byte(`{"tenant":"a"}`)},
		{Offset: 101, Time: time.UnixMilli(base + 250).UTC(), Key: nil, Value: []byte(`{"tenant":"b"}`)},
		{Offset: 103, Time: time.UnixMilli(base + 1000).UTC(), Key: []byte{}, Value: []byte{}},
	}
	for _, codec := range []compress.Compression{0, compress.Gzip, compress.Snappy, compress.Lz4, compress.Zstd} {
		t.Run(fmt.Sprint("codec ", codec), func(t *testing.T) {
			got, err := readAll(testBatch{base: 100, baseTime: base, codec: codec, recs: recs}.encode(t))
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}
	t.Run("log append time", func(t *testing.T) {
		b := testBatch{base: 100, baseTime: base, attrs: attrLogAppendTime, recs: recs}.encode(t)
		appended := base + 5000
		binary.BigEndian.PutUint64(b[35:], uint64(appended)) // maxTimestamp: the broker's append time
		binary.BigEndian.PutUint32(b[batchCRC:], crc32.Checksum(b[batchAttrs:], castagnoli))
		got, err := readAll(b)
		require.NoError(t, err)
		for _, r := range got {
			require.Equal(t, time.UnixMilli(appended).UTC(), r.Time)
		}
	})
	t.Run("no timestamp", func(t *testing.T) {
		got, err := readAll(testBatch{base: 7, baseTime: -1, recs: recs[:1]}.encode(t))
		require.NoError(t, err)
		require.True(t, got[0].Time.IsZero())
	})
	t.Run("transaction marker", func(t *testing.T) {
		var br batchReader
		require.NoError(t, br.reset(testBatch{base: 9, baseTime: base, attrs: attrControl, recs: recs[:1]}.encode(t)))
		ok, err := br.next(&Record{})
		require.False(t, ok)
		require.NoError(t, err)
		require.Equal(t, int64(9), br.last, "the marker's offset is passed over")
	})
}

func TestBatchReaderRejectsBadBatches(t *testing.T) {
	good := testBatch{base: 5, baseTime: 1, recs: []testRecord{{0, 0, nil, []byte("abc"), nil}, {1, 0, nil, []byte("de"), nil}}}
	fresh := func() []byte { return good.encode(t) }
	resum := func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[batchCRC:], crc32.Checksum(b[batchAttrs:], castagnoli))
		return b
	}
	cases := map[string][]byte{
		"short":        fresh()[:batchHeaderLen-1],
		"length field": func() []byte { b := fresh(); return b[:len(b)-1] }(),
		"magic 1":      func() []byte { b := fresh(); b[batchMagic] = 1; return b }(),
		"crc":          func() []byte { b := fresh(); b[len(b)-1] ^= 1; return b }(),
		"codec 7":      func() []byte { b := fresh(); b[batchAttrs+1] |= 7; return resum(b) }(),
		"not gzip":     func() []byte { b := fresh(); b[batchAttrs+1] |= byte(compress.Gzip); return resum(b) }(),
		"count":        func() []byte { b := fresh(); binary.BigEndian.PutUint32(b[57:], 3); return resum(b) }(),
		"record length": func() []byte {
			b := fresh()
			b[batchHeaderLen] = 0x7e // a record of 63 bytes, in 10 left
			return resum(b)
		}(),
		"value length": func() []byte {
			b := fresh()
			// length, attributes, timestamp delta, offset delta, key (null: -1 is 0x01), value length
			b[batchHeaderLen+5] = 0x40
			return resum(b)
		}(),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := readAll(b)
			require.ErrorIs(t, err, errBadBatch)
		})
	}
	_, err := readAll(fresh())
	require.NoError(t, err, "the unbroken batch reads")

	t.Run("compression bomb", func(t *testing.T) {
		bomb := testBatch{base: 0, baseTime: 1, codec: compress.Zstd, recs: []testRecord{{value: make([]byte, maxInflatedBatch)}}}.encode(t)
		require.Less(t, len(bomb), 1<<20)
		_, err := readAll(bomb)
		require.ErrorIs(t, err, errBadBatch)
		require.ErrorContains(t, err, "inflate past 64 MiB")
	})
}

// A response as the broker sends it, read through Response, at every
// Fetch version gapwatch speaks: records from the fetch offset on, the
// batches' ends passed over, a batch cut at the size limit left for the next
// fetch.
func TestFetchResponseReadsRecords(t *testing.T) {
	recs := func(n int) []testRecord {
		var out []testRecord
		for i := range n {
			out = append(out, testRecord{offsetDelta: int32(i), tsDelta: int64(i), value: fmt.Appendf(nil, "v%d", i)})
		}
		return out
	}
	var set []byte
	set = append(set, testBatch{base: 0, baseTime: 1000, recs: recs(5)}.encode(t)...)
	set = append(set, testBatch{base: 5, baseTime: 2000, codec: compress.Lz4, recs: recs(4), last: 4}.encode(t)...) // offset 9 compacted away
	set = append(set, testBatch{base: 10, baseTime: 3000, attrs: attrControl, recs: recs(1)}.encode(t)...)          // a commit marker
	cut := testBatch{base: 11, baseTime: 4000, recs: recs(3)}.encode(t)
	set = append(set, cut[:len(cut)-7]...)

	for v := int16(fetchMinVersion); v <= fetchMaxVersion; v++ {
		t.Run(fmt.Sprint("v", v), func(t *testing.T) {
			part := kmsg.NewFetchResponseTopicPartition()
			part.Partition, part.HighWatermark, part.RecordBatches = 3, 14, set
			part.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{{ProducerID: 7, FirstOffset: 2}}
			part.PreferredReadReplica = -1
			resp := &Response{f: &Reader{next: 2}, r: frame(v, 42, "logs", part), next: 2}
			resp.br.clear()
			require.NoError(t, resp.head(v, 42, "logs", 3))
			var offsets []int64
			var values []string
			var rec Record
			for resp.Next(&rec) {
				offsets = append(offsets, rec.Offset)
				values = append(values, string(rec.Value))
			}
			require.ErrorIs(t, resp.err, io.EOF)
			require.Equal(t, []int64{2, 3, 4, 5, 6, 7, 8}, offsets)
			require.Equal(t, []string{"v2", "v3", "v4", "v0", "v1", "v2", "v3"}, values)
			require.Equal(t, int64(11), resp.next, "the next fetch starts at the cut batch")
			require.Equal(t, int64(14), resp.highWater)
			require.NoError(t, resp.skip(resp.frame))
		})
	}
	t.Run("partition error", func(t *testing.T) {
		part := kmsg.NewFetchResponseTopicPartition()
		part.Partition, part.ErrorCode, part.HighWatermark = 3, int16(kafka.OffsetOutOfRange), -1
		resp := &Response{f: &Reader{next: 2}, r: frame(11, 1, "logs", part), next: 2}
		require.NoError(t, resp.head(11, 1, "logs", 3))
		require.False(t, resp.Next(&Record{}))
		require.True(t, errors.Is(resp.err, kafka.OffsetOutOfRange))
	})
	t.Run("another request's response", func(t *testing.T) {
		part := kmsg.NewFetchResponseTopicPartition()
		resp := &Response{f: &Reader{}, r: frame(11, 1, "logs", part)}
		require.ErrorContains(t, resp.head(11, 2, "logs", 0), "request 1, want 2")
	})
}

// frame encodes a one-partition Fetch response with kmsg, with its size and
// correlation id in front.
func frame(version int16, corr int32, topic string, part kmsg.FetchResponseTopicPartition) *bufio.Reader {
	resp := kmsg.NewFetchResponse()
	resp.Version = version
	resp.Topics = []kmsg.FetchResponseTopic{{Topic: topic, Partitions: []kmsg.FetchResponseTopicPartition{part}}}
	body := resp.AppendTo(nil)
	b := binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	return bufio.NewReaderSize(bytes.NewReader(append(b, body...)), 4096)
}

func TestFetchRequestEncoding(t *testing.T) {
	for v := int16(fetchMinVersion); v <= fetchMaxVersion; v++ {
		b := appendFetchRequest(nil, v, 77, "gapwatch", "logs", 4, 12345, 1<<20, 500*time.Millisecond)
		require.Equal(t, len(b)-4, int(binary.BigEndian.Uint32(b)), "size")
		require.Equal(t, uint16(fetchAPIKey), binary.BigEndian.Uint16(b[4:]))
		require.Equal(t, uint16(v), binary.BigEndian.Uint16(b[6:]))
		require.Equal(t, uint32(77), binary.BigEndian.Uint32(b[8:]))
		require.Equal(t, "gapwatch", string(b[14:14+binary.BigEndian.Uint16(b[12:])]))
		req := kmsg.NewFetchRequest()
		req.Version = v
		require.NoError(t, req.ReadFrom(b[14+len("gapwatch"):]), "v%d", v)
		require.Equal(t, int32(-1), req.ReplicaID)
		require.Equal(t, int32(500), req.MaxWaitMillis)
		require.Equal(t, int32(1), req.MinBytes)
		require.Equal(t, int32(1<<20), req.MaxBytes)
		require.Equal(t, int8(1), req.IsolationLevel, "read committed")
		require.Len(t, req.Topics, 1)
		require.Equal(t, "logs", req.Topics[0].Topic)
		require.Len(t, req.Topics[0].Partitions, 1)
		p := req.Topics[0].Partitions[0]
		require.Equal(t, int32(4), p.Partition)
		require.Equal(t, int64(12345), p.FetchOffset)
		require.Equal(t, int32(1<<20), p.PartitionMaxBytes)
		if v >= 7 {
			require.Equal(t, int32(-1), req.SessionEpoch, "no fetch session")
		}
		if v >= 9 {
			require.Equal(t, int32(-1), p.CurrentLeaderEpoch)
		}
	}
}

// FuzzRecordBatch feeds arbitrary bytes to the batch reader: it never panics,
// and what it reads is what kmsg reads. The length field and the CRC of the
// input are set right first (when it is long enough), so that mutations reach
// the records rather than the checksum, and the compression bits are cleared:
// the codecs are kafka-go's (their bombs stalled the fuzzer, and the cap on
// what a batch may inflate to is tested above).
func FuzzRecordBatch(f *testing.F) {
	rec := []testRecord{{0, 0, []byte("k"), []byte(`{"tenant":"a","source":"b"}`), []kmsg.Header{{Key: "x", Value: []byte("y")}}}, {2, 9, nil, []byte("z"), nil}}
	f.Add(testBatch{base: 3, baseTime: 1700000000000, recs: rec}.encode(f))
	f.Add(testBatch{base: 0, baseTime: -1, recs: rec[:1]}.encode(f))
	f.Add(testBatch{base: 1, baseTime: 5, attrs: attrLogAppendTime, recs: rec}.encode(f))
	f.Add(testBatch{base: 1, baseTime: 5, attrs: attrControl, recs: rec}.encode(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		b = bytes.Clone(b) // the fuzzer's input is not ours to change
		if len(b) >= batchHeaderLen {
			b[batchAttrs+1] &^= attrCompression
			binary.BigEndian.PutUint32(b[8:], uint32(len(b)-batchLengthEnd))
			binary.BigEndian.PutUint32(b[batchCRC:], crc32.Checksum(b[batchAttrs:], castagnoli))
		}
		got, err := readAll(b)
		if err != nil {
			require.ErrorIs(t, err, errBadBatch)
			return
		}
		var kb kmsg.RecordBatch
		if kb.ReadFrom(b) != nil || kb.Attributes&attrControl != 0 {
			return
		}
		rest := kb.Records
		for i := range got {
			// kmsg reads a record from its length on; cut it there first.
			n, k := binary.Varint(rest)
			require.Positive(t, k)
			var kr kmsg.Record
			require.NoError(t, kr.ReadFrom(rest[:k+int(n)]), "record %d", i)
			rest = rest[k+int(n):]
			require.Equal(t, kb.FirstOffset+int64(kr.OffsetDelta), got[i].Offset)
			require.Equal(t, kr.Key, got[i].Key)
			require.Equal(t, kr.Value, got[i].Value)
			if ms := kb.FirstTimestamp + kr.TimestampDelta64; ms > 0 && kb.Attributes&attrLogAppendTime == 0 {
				require.Equal(t, ms, got[i].Time.UnixMilli())
			}
		}
	})
}
