package fetch

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ofProducer makes an encoded batch one of producer's transaction.
func ofProducer(b []byte, producer int64) []byte {
	binary.BigEndian.PutUint64(b[43:], uint64(producer))
	binary.BigEndian.PutUint32(b[batchCRC:], crc32.Checksum(b[batchAttrs:], castagnoli))
	return b
}

// Read committed: the records of aborted transactions are skipped (from the
// transaction's first offset to its abort marker, per producer), committed
// and non-transactional ones read, and the lag is measured to the last
// stable offset.
func TestFetchResponseSkipsAbortedTransactions(t *testing.T) {
	recs := func(n int) []testRecord {
		var out []testRecord
		for i := range n {
			out = append(out, testRecord{offsetDelta: int32(i), value: fmt.Appendf(nil, "v%d", i)})
		}
		return out
	}
	txn := int16(attrTransactional)
	marker := int16(attrTransactional | attrControl)
	var set []byte
	set = append(set, ofProducer(testBatch{base: 2, baseTime: 1, attrs: txn, recs: recs(2)}.encode(t), 7)...)    // 2–3 aborted
	set = append(set, ofProducer(testBatch{base: 4, baseTime: 1, attrs: txn, recs: recs(2)}.encode(t), 8)...)    // 4–5 committed, interleaved
	set = append(set, ofProducer(testBatch{base: 6, baseTime: 1, attrs: marker, recs: recs(1)}.encode(t), 7)...) // 6 abort marker of 7
	set = append(set, ofProducer(testBatch{base: 7, baseTime: 1, attrs: marker, recs: recs(1)}.encode(t), 8)...) // 7 commit marker of 8
	set = append(set, testBatch{base: 8, baseTime: 1, recs: recs(2)}.encode(t)...)                               // 8–9 no transaction
	set = append(set, ofProducer(testBatch{base: 10, baseTime: 1, attrs: txn, recs: recs(2)}.encode(t), 7)...)   // 10–11 committed this time
	set = append(set, ofProducer(testBatch{base: 12, baseTime: 1, attrs: marker, recs: recs(1)}.encode(t), 7)...)
	set = append(set, ofProducer(testBatch{base: 13, baseTime: 1, attrs: txn, recs: recs(2)}.encode(t), 7)...) // 13–14 aborted again
	set = append(set, ofProducer(testBatch{base: 15, baseTime: 1, attrs: marker, recs: recs(1)}.encode(t), 7)...)

	for v := int16(fetchMinVersion); v <= fetchMaxVersion; v++ {
		t.Run(fmt.Sprint("v", v), func(t *testing.T) {
			part := kmsg.NewFetchResponseTopicPartition()
			part.Partition, part.HighWatermark, part.LastStableOffset, part.RecordBatches = 0, 30, 16, set
			part.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{
				{ProducerID: 7, FirstOffset: 13}, {ProducerID: 7, FirstOffset: 2}} // out of order: sorted on reading
			part.PreferredReadReplica = -1
			f := &Reader{next: 2}
			resp := &Response{f: f, r: frame(v, 1, "logs", part), next: 2}
			resp.br.clear()
			require.NoError(t, resp.head(v, 1, "logs", 0))
			var offsets []int64
			var rec Record
			for resp.Next(&rec) {
				offsets = append(offsets, rec.Offset)
			}
			require.ErrorIs(t, resp.err, io.EOF)
			require.Equal(t, []int64{4, 5, 8, 9, 10, 11}, offsets)
			require.Equal(t, int64(16), resp.next, "past the aborted records and markers")
			lag, ok := f.Done(t.Context(), resp)
			require.True(t, ok)
			require.Zero(t, lag, "caught up to the last stable offset: the open transaction after it is not lag")
			require.False(t, f.CaughtUp(), "but not idle: the open transaction's records are still to come")
		})
	}
}

// CaughtUp is true only once a fetch has seen the high-water mark at the
// reader's offset.
func TestCaughtUp(t *testing.T) {
	require.False(t, (&Reader{next: 0, highWater: -1}).CaughtUp(), "no fetch yet")
	require.False(t, (&Reader{next: 15, highWater: 16}).CaughtUp())
	require.True(t, (&Reader{next: 16, highWater: 16}).CaughtUp())
}
