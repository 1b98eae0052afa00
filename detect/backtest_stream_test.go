package detect

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/storage"
)

// countsCSV renders the series as the backtest CSV, in time order.
func countsCSV(ss []series, buckets int) []byte {
	var b bytes.Buffer
	b.WriteString("time,tenant,source,count\n")
	for i := range buckets {
		for _, s := range ss {
			if i < len(s.counts) && s.counts[i] > 0 {
				fmt.Fprintf(&b, "%s,%s,%s,%d\n", time.Unix(t0+int64(i)*60, 0).UTC().Format(time.RFC3339), s.tenant, s.source, s.counts[i])
			}
		}
	}
	return b.Bytes()
}

func streamCSV(tb testing.TB, in []byte, step time.Duration) ([]byte, *CSVCounts) {
	tb.Helper()
	src, err := NewCSVCounts(bytes.NewReader(in), step)
	require.NoError(tb, err)
	var got []byte
	require.NoError(tb, BacktestBuckets(Config{Bucket: src.Step(), Phase: src.Phase()}, src.Next,
		func(ev Event) error { got = ev.AppendLine(got); return nil }))
	return got, src
}

func TestCSVCountsEqualsBacktest(t *testing.T) {
	ss := many(12, 1440)
	in := countsCSV(ss, 1440)
	counts, err := ReadCountsCSV(bytes.NewReader(in))
	require.NoError(t, err)
	var want []byte
	require.NoError(t, Backtest(counts, Config{}, func(ev Event) error { want = ev.AppendLine(want); return nil }))
	require.NotEmpty(t, want)
	for _, step := range []time.Duration{0, time.Minute} {
		got, src := streamCSV(t, in, step)
		require.Equal(t, string(want), string(got), "step %s", step)
		require.Equal(t, len(counts), src.Rows())
		require.Equal(t, time.Minute, src.Step())
	}
	// The buckets hold exactly the file's rows, in time order.
	src, err := NewCSVCounts(bytes.NewReader(in), 0)
	require.NoError(t, err)
	var all []storage.Count
	for {
		cs, err := src.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		for _, c := range cs {
			require.Equal(t, cs[0].Bucket, c.Bucket)
		}
		all = append(all, cs...)
	}
	require.Equal(t, counts, all)
}

// TestCSVCountsBoundedMemory: the rows held at once do not grow with the
// length of the input (4 times as long, same most held).
func TestCSVCountsBoundedMemory(t *testing.T) {
	ss := many(12, 4*1440)
	_, short := streamCSV(t, countsCSV(ss, 1440), 0)
	_, long := streamCSV(t, countsCSV(ss, 4*1440), 0)
	require.Greater(t, long.Rows(), 3*short.Rows())
	require.Equal(t, short.MaxHeld(), long.MaxHeld())
	require.LessOrEqual(t, long.MaxHeld(), (csvLookAhead+2)*len(ss), "look-ahead plus a bucket")
}

func TestCSVCountsErrors(t *testing.T) {
	const head = "time,tenant,source,count\n"
	run := func(in string, step time.Duration) error {
		src, err := NewCSVCounts(bytes.NewReader([]byte(in)), step)
		if err != nil {
			return err
		}
		return BacktestBuckets(Config{Bucket: src.Step(), Phase: src.Phase()}, src.Next, func(Event) error { return nil })
	}
	for _, tc := range []struct {
		in   string
		step time.Duration
		want string
	}{
		{head + "2025-03-03T00:01:00Z,a,b,1\n2025-03-03T00:02:00Z,a,b,1\n2025-03-03T00:00:00Z,a,b,1\n", 0,
			"line 4: time 2025-03-03T00:00:00Z is before 2025-03-03T00:02:00Z on line 3"},
		{head + "2025-03-03T00:01:00Z,a,b,1\n2025-03-03T00:02:00Z,a,b,1\n2025-03-03T00:00:00Z,a,b,1\n", time.Minute,
			"line 4: time 2025-03-03T00:00:00Z is before"},
		{head + "2025-03-03T00:00:00Z,a,b,1\n2025-03-03T00:01:00Z,a,b,1\n2025-03-03T00:01:30Z,a,b,1\n", time.Minute,
			"line 4: bucket start 2025-03-03T00:01:30Z is not on the 1m0s grid of the rows before; every stream's"},
		{head + "2025-03-03T00:00:00Z,a,b,1\n", 0, "give --step"},
	} {
		err := run(tc.in, tc.step)
		require.ErrorIs(t, err, ErrBadInput, tc.in)
		require.ErrorContains(t, err, tc.want)
	}
	// Past the look-ahead, a row off the inferred grid asks for --step.
	off := head
	for i := range csvLookAhead + 2 {
		off += fmt.Sprintf("2025-03-03T%02d:%02d:00Z,a,b,1\n", 2*i/60, 2*i%60)
	}
	err := run(off+"2025-03-03T01:01:00Z,a,b,1\n", 0)
	require.ErrorIs(t, err, ErrBadInput)
	require.ErrorContains(t, err, fmt.Sprintf("line %d: bucket start 2025-03-03T01:01:00Z is not on the 2m0s grid of the rows before; give --step", csvLookAhead+4))
	// Past the look-ahead, the error still names the line and how to sort.
	ss := many(6, 240)
	in := append(countsCSV(ss, 240), "2025-03-03T00:05:00Z,a,b,1\n"...)
	src, err := NewCSVCounts(bytes.NewReader(in), 0)
	require.NoError(t, err)
	err = BacktestBuckets(Config{Bucket: src.Step()}, src.Next, func(Event) error { return nil })
	require.ErrorIs(t, err, ErrBadInput)
	require.ErrorContains(t, err, fmt.Sprintf("line %d:", src.Rows()+2))
	require.ErrorContains(t, err, "sort -t, -k1,1")
}

func TestEventCounts(t *testing.T) {
	c, err := NewEventCounts(time.Minute, 2*time.Minute)
	require.NoError(t, err)
	at := func(s int64) time.Time { return time.Unix(t0+s, 0) }
	require.True(t, c.Add([]byte("a"), []byte("x"), at(10)))
	require.True(t, c.Add([]byte("a"), []byte("x"), at(70)))
	require.True(t, c.Add([]byte("b"), []byte("y"), at(5)))
	_, ok := c.Next(false)
	require.False(t, ok, "nothing closed yet")
	// Newest 3:00: bucket 0:00 ends 2 minutes before, closed.
	require.True(t, c.Add([]byte("a"), []byte("x"), at(180)))
	cs, ok := c.Next(false)
	require.True(t, ok)
	require.Equal(t, []storage.Count{
		{Tenant: "a", Source: "x", Clock: storage.Arrival, Bucket: t0, Events: 1},
		{Tenant: "b", Source: "y", Clock: storage.Arrival, Bucket: t0, Events: 1},
	}, cs)
	_, ok = c.Next(false)
	require.False(t, ok)
	// An event for the closed bucket is dropped and counted; one within the lateness is not.
	require.False(t, c.Add([]byte("a"), []byte("x"), at(59)))
	require.True(t, c.Add([]byte("a"), []byte("x"), at(61)))
	require.Equal(t, 1, c.Late)
	require.Equal(t, 5, c.Events)
	cs, ok = c.Next(true)
	require.True(t, ok)
	require.Equal(t, uint64(2), cs[0].Events)
	cs, ok = c.Next(true)
	require.True(t, ok)
	require.Equal(t, t0+180, cs[0].Bucket)
	_, ok = c.Next(true)
	require.False(t, ok)
}

// TestEventCountsBoundedMemory: the counts held do not grow with the input.
func TestEventCountsBoundedMemory(t *testing.T) {
	held := func(minutes int) int {
		c, err := NewEventCounts(time.Minute, 10*time.Minute)
		require.NoError(t, err)
		for i := range minutes * 60 {
			// Three streams, events up to 5 minutes out of order.
			s := int64(i) - int64(i%7)*40
			c.Add([]byte("t"), fmt.Appendf(nil, "s%d", i%3), time.Unix(t0+s, 0))
			for {
				if _, ok := c.Next(false); !ok {
					break
				}
			}
		}
		for {
			if _, ok := c.Next(true); !ok {
				break
			}
		}
		require.Zero(t, c.Late)
		return c.MaxHeld()
	}
	short, long := held(60), held(24*60)
	require.Equal(t, short, long)
	require.LessOrEqual(t, long, 3*12)
}
