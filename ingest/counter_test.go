package ingest

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/ingest/decode"
	"github.com/gapwatch/gapwatch/storage"
)

var ct0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// msgAt is the message before offset next of partition p of topic logs.
func msgAt(p int32, next int64, arrival time.Time) *Message {
	return &Message{Topic: "logs", Partition: p, Offset: next - 1, Arrival: arrival, Value: []byte("{}")}
}

func take(c *Counter) storage.Batch {
	b, _ := c.Take()
	return b
}

func stage(evs ...decode.Event) *Staged {
	s := &Staged{}
	for _, e := range evs {
		s.Add(e)
	}
	return s
}

func cev(tenant, source string, at time.Time) decode.Event {
	return decode.Event{Tenant: []byte(tenant), Source: []byte(source), Time: at}
}

func TestCounterCountsBothClocks(t *testing.T) {
	c := NewCounter(time.Minute, NewStreams(Limits{}), Limits{})
	arrival := ct0.Add(90 * time.Second)
	_, err := c.Apply(msgAt(2, 11, arrival), stage(
		cev("acme", "fw", ct0.Add(85*time.Second)),   // 5 s late, same minute
		cev("acme", "fw", ct0.Add(-20*time.Second)),  // previous minute on the event clock, 110 s late
		cev("acme", "dns", arrival.Add(time.Minute)), // from the future: lateness 0
	))
	require.NoError(t, err)
	b := take(c)
	got := map[[3]any]uint64{}
	for _, x := range b.Counts {
		got[[3]any{x.Source, x.Clock, x.Bucket}] = x.Events
		if x.Clock == storage.Arrival && x.Source == "fw" {
			require.Equal(t, uint64(1), x.Lateness[storage.LatenessBucket(5*time.Second)])
			require.Equal(t, uint64(1), x.Lateness[storage.LatenessBucket(110*time.Second)])
		}
		if x.Clock == storage.Event {
			require.Nil(t, x.Lateness)
		}
	}
	m := ct0.Unix()
	require.Equal(t, map[[3]any]uint64{
		{"fw", storage.Arrival, m + 60}:  2,
		{"fw", storage.Event, m + 60}:    1,
		{"fw", storage.Event, m - 60}:    1,
		{"dns", storage.Arrival, m + 60}: 1,
		{"dns", storage.Event, m + 120}:  1,
	}, got)
	require.Equal(t, []storage.Offset{{Topic: "logs", Partition: 2, Next: 11, ArrivalHW: arrival}}, b.Offsets)
	require.Empty(t, take(c).Counts, "Take empties the counter")

	// An event-clock count carries the latest arrival of its events (when
	// late data was all in), an arrival-clock count the earliest (from when
	// the bucket had events).
	_, err = c.Apply(msgAt(2, 12, ct0.Add(10*time.Minute)), stage(cev("acme", "fw", ct0.Add(-50*time.Second))))
	require.NoError(t, err)
	_, err = c.Apply(msgAt(2, 13, ct0.Add(9*time.Minute+20*time.Second)), stage(cev("acme", "fw", ct0.Add(-40*time.Second))))
	require.NoError(t, err)
	_, err = c.Apply(msgAt(2, 14, ct0.Add(9*time.Minute+5*time.Second)), stage(cev("acme", "fw", ct0.Add(-40*time.Second))))
	require.NoError(t, err)
	arrivals := map[[2]int64]int64{}
	for _, x := range take(c).Counts {
		arrivals[[2]int64{int64(x.Clock), x.Bucket}] = x.Arrival
	}
	require.Equal(t, map[[2]int64]int64{
		{int64(storage.Arrival), m + 540}: m + 545, // the earliest of its events
		{int64(storage.Arrival), m + 600}: m + 600,
		{int64(storage.Event), m - 60}:    m + 600,
	}, arrivals)
}

func TestCounterKeepsArrivalWatermark(t *testing.T) {
	c := NewCounter(time.Minute, NewStreams(Limits{}), Limits{})
	_, _ = c.Apply(msgAt(0, 1, ct0.Add(time.Minute)), stage(cev("a", "s", ct0)))
	_, _ = c.Apply(msgAt(0, 2, ct0), stage(cev("a", "s", ct0))) // an older record timestamp
	b := take(c)
	require.Equal(t, int64(2), b.Offsets[0].Next)
	require.Equal(t, ct0.Add(time.Minute), b.Offsets[0].ArrivalHW)
}

func TestCounterNeverSplitsAMessage(t *testing.T) {
	// Partition goroutines apply messages of 5 events each while a flusher takes:
	// every batch must hold exactly 5 events per message its offsets advanced by.
	c := NewCounter(time.Minute, NewStreams(Limits{}), Limits{MaxPendingCells: 64})
	const partitions, messages, per = 4, 2000, 5
	var wg sync.WaitGroup
	for p := range partitions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &Staged{}
			for i := range messages {
				s.Reset()
				for j := range per {
					s.Add(cev("t", "src", ct0.Add(time.Duration(i*per+j)*time.Second)))
				}
				_, err := c.Apply(msgAt(int32(p), int64(i+1), ct0.Add(time.Duration(i)*time.Second)), s)
				require.NoError(t, err)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	last := map[int32]int64{}
	total := uint64(0)
	check := func(b storage.Batch) {
		advanced := int64(0)
		for _, o := range b.Offsets {
			advanced += o.Next - last[o.Partition]
			last[o.Partition] = o.Next
		}
		events := b.Events()
		require.Equal(t, uint64(advanced*per), events, "batch splits a message")
		total += events
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		check(take(c))
	}
	check(take(c))
	require.Equal(t, uint64(partitions*messages*per), total)
}

func TestCounterBackpressureAndClose(t *testing.T) {
	c := NewCounter(time.Minute, NewStreams(Limits{}), Limits{MaxPendingCells: 4})
	_, err := c.Apply(msgAt(0, 1, ct0), stage(cev("a", "1", ct0), cev("a", "2", ct0))) // 4 cells
	require.NoError(t, err)
	applied := make(chan error, 1)
	go func() {
		_, err := c.Apply(msgAt(0, 2, ct0), stage(cev("a", "3", ct0)))
		applied <- err
	}()
	select {
	case <-applied:
		t.Fatal("Apply must wait while the pending map is full")
	case <-time.After(50 * time.Millisecond):
	}
	require.Len(t, take(c).Counts, 4)
	require.NoError(t, <-applied, "a Take lets the waiting Apply through")

	take(c)
	_, err = c.Apply(msgAt(0, 3, ct0), stage(cev("a", "4", ct0), cev("a", "5", ct0)))
	require.NoError(t, err)
	go func() {
		_, err := c.Apply(msgAt(0, 4, ct0), stage(cev("a", "6", ct0)))
		applied <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	require.ErrorIs(t, <-applied, ErrClosed)
}

func TestStreamCaps(t *testing.T) {
	c := NewCounter(time.Minute, NewStreams(Limits{MaxStreams: 3, MaxStreamsPerTenant: 2}), Limits{})
	refused, err := c.Apply(msgAt(0, 1, ct0), stage(
		cev("a", "1", ct0), cev("a", "2", ct0), cev("a", "3", ct0), // third source of a: over per-tenant cap
		cev("b", "1", ct0), cev("c", "1", ct0), // c: over the total cap
		cev("a", "1", ct0), // known stream: still counted
	))
	require.NoError(t, err)
	require.Equal(t, 2, refused)
	b, dead := c.Take()
	require.Equal(t, uint64(4), b.Events())
	require.Len(t, dead, 1, "the message with refused events becomes one dead letter")
	require.Equal(t, ReasonStreamLimit, dead[0].Reason)
	require.Equal(t, 2, dead[0].Rejected)
	require.Equal(t, int64(0), dead[0].Offset)
}

// A forger's made-up tenants fill the cap but the reserve: a tenant of the
// coverage policy still gets its new streams, and the pressure shows.
func TestPriorityTenantsKeepTheirReserve(t *testing.T) {
	streams := NewStreams(Limits{MaxStreams: 10, MaxStreamsPerTenant: 10, PriorityTenants: []string{"acme"}, ReservedStreams: 3})
	c := NewCounter(time.Minute, streams, Limits{})
	var forged []decode.Event
	for i := range 20 {
		forged = append(forged, cev(fmt.Sprintf("forged-%02d", i), "x", ct0))
	}
	refused, err := c.Apply(msgAt(0, 1, ct0), stage(forged...))
	require.NoError(t, err)
	require.Equal(t, 13, refused, "7 admitted: 10 less the reserve of 3")
	used, atCap, full := streams.CapPressure()
	require.InDelta(t, 0.7, used, 1e-9)
	require.Equal(t, 10, atCap, "13 tenants refused, counted up to max_streams (the map's bound)")
	require.True(t, full)

	refused, err = c.Apply(msgAt(0, 2, ct0), stage(cev("acme", "SignInLogs", ct0), cev("acme", "AuditLogs", ct0), cev("acme", "edr", ct0), cev("acme", "dns", ct0)))
	require.NoError(t, err)
	require.Equal(t, 1, refused, "the reserve of 3 is acme's; the fourth finds the cap")
	used, _, full = streams.CapPressure()
	require.InDelta(t, 1.0, used, 1e-9)
	require.True(t, full)

	require.ErrorContains(t, Config{Limits: Limits{MaxStreams: 5, ReservedStreams: 5}}.WithDefaults().Validate(), "reserved_streams")
}

func TestDeadLetters(t *testing.T) {
	c := NewCounter(time.Minute, NewStreams(Limits{}), Limits{})
	s := stage(cev("a", "1", ct0))
	s.Reject(decode.ReasonMissingTime, "record 1: no time")
	s.Reject(decode.ReasonBadTenant, "record 2: control character")
	m := msgAt(3, 8, ct0)
	m.Key, m.Value = []byte("k"), []byte(`{"records":[...]}`)
	_, err := c.Apply(m, s)
	require.NoError(t, err)
	_, err = c.Apply(msgAt(3, 9, ct0), stage(cev("a", "1", ct0))) // clean: no letter
	require.NoError(t, err)
	b, dead := c.Take()
	require.Equal(t, uint64(2), b.Events(), "the good record of the mixed message still counts")
	require.Equal(t, []DeadLetter{{Topic: "logs", Partition: 3, Offset: 7, Arrival: ct0, Key: []byte("k"),
		Value: []byte(`{"records":[...]}`), Size: 17, Reason: decode.ReasonMissingTime,
		Detail: "missing_time: record 1: no time; bad_tenant: record 2: control character", Rejected: 2}}, dead)
	m.Value = make([]byte, MaxDeadLetterValue+10)
	_, err = c.Apply(m, s)
	require.NoError(t, err)
	_, dead = c.Take()
	require.Len(t, dead[0].Value, MaxDeadLetterValue, "long values are cut")
	require.Equal(t, MaxDeadLetterValue+10, dead[0].Size)
}

func BenchmarkCounterApply(b *testing.B) {
	c := NewCounter(time.Minute, NewStreams(Limits{}), Limits{})
	s := stage(cev("tenant-0042", "firewall", ct0))
	b.ReportAllocs()
	for i := range b.N {
		if _, err := c.Apply(msgAt(0, int64(i+1), ct0), s); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStreamsForgetIdle: at the caps, a stream idle for StreamIdle (arrival
// time) is forgotten to admit a new one, unless its id may still be pending or
// in a batch being built; ids are reused and the names stay right.
func TestStreamsForgetIdle(t *testing.T) {
	c := NewCounter(time.Minute, NewStreams(Limits{MaxStreams: 2, MaxStreamsPerTenant: 2}), Limits{})
	apply := func(offset int64, at time.Time, evs ...decode.Event) int {
		refused, err := c.Apply(msgAt(0, offset, at), stage(evs...))
		require.NoError(t, err)
		return refused
	}
	require.Zero(t, apply(1, ct0, cev("a", "1", ct0), cev("a", "2", ct0)))
	take(c)
	take(c)
	require.Zero(t, apply(2, ct0, cev("a", "1", ct0)), "a/1: idle by arrival time, but pending")
	later := ct0.Add(2 * time.Hour)
	require.Zero(t, apply(3, later, cev("x", "9", later)), "a/2 is forgotten for x/9")
	require.Equal(t, 1, apply(4, later.Add(2*time.Minute), cev("y", "8", later)), "a/1 is pending: not forgotten")
	got := map[string]uint64{}
	for _, x := range take(c).Counts {
		if x.Clock == storage.Arrival {
			got[x.Tenant+"/"+x.Source] += x.Events
		}
	}
	require.Equal(t, map[string]uint64{"a/1": 1, "x/9": 1}, got)
	take(c)
	require.Zero(t, apply(5, later.Add(4*time.Minute), cev("y", "8", later)), "a/1 idle and taken twice: forgotten")
	require.Equal(t, 2, c.streams.Len())
	for _, x := range take(c).Counts {
		require.Equal(t, "y/8", x.Tenant+"/"+x.Source)
	}
}

// TestStreamsForgetIdleInLanes: a stream pending in one lane is not forgotten
// however often the other lane takes.
func TestStreamsForgetIdleInLanes(t *testing.T) {
	c := NewCounter(time.Minute, NewStreams(Limits{MaxStreams: 1, MaxStreamsPerTenant: 1}), Limits{})
	apply := func(partition int32, at time.Time, ev decode.Event) int {
		refused, err := c.Apply(msgAt(partition, 1, at), stage(ev))
		require.NoError(t, err)
		return refused
	}
	require.Zero(t, apply(1, ct0, cev("a", "1", ct0))) // partition 1: lane 1
	later := ct0.Add(2 * time.Hour)
	for i := range 3 {
		c.TakeLane(0)
		require.Equal(t, 1, apply(0, later.Add(time.Duration(i)*time.Minute), cev("b", "2", later)), "a/1 is pending in lane 1")
	}
	b, _ := c.TakeLane(1)
	require.Len(t, b.Counts, 2)
	require.Equal(t, "a", b.Counts[0].Tenant)
	require.Zero(t, apply(0, later.Add(5*time.Minute), cev("b", "2", later)), "a/1 taken: forgotten")
}

// BenchmarkCounterManyStreams: 100 k streams over 6 partitions (both lanes),
// one event per message, a Take every 200 k events (the bench's sparse worst
// case: a cell per event).
func BenchmarkCounterManyStreams(b *testing.B) {
	const streams = 100_000
	c := NewCounter(time.Minute, NewStreams(Limits{}), Limits{})
	names := make([][]byte, streams)
	for i := range names {
		names[i] = []byte("tenant-" + strconv.Itoa(i/6))
	}
	s := &Staged{}
	src := [][]byte{[]byte("SignInLogs"), []byte("AuditLogs"), []byte("firewall"), []byte("dns"), []byte("edr"), []byte("proxy")}
	b.ReportAllocs()
	for i := range b.N {
		s.Reset()
		s.Add(decode.Event{Tenant: names[i%streams], Source: src[i%6], Time: ct0})
		if _, err := c.Apply(msgAt(int32(i%streams%6), int64(i+1), ct0.Add(time.Duration(i/streams)*time.Minute)), s); err != nil {
			b.Fatal(err)
		}
		if i%200_000 == 199_999 {
			c.Take()
		}
	}
}

// TestCaughtUp: CaughtUp fires once when the last partition that was catching
// up (catchUpLag records behind or more) has caught up, not on small lags.
func TestCaughtUp(t *testing.T) {
	c := NewCounter(time.Minute, NewStreams(Limits{}), Limits{})
	fired := func() bool { // in every lane, or in none
		n := 0
		for lane := range c.Lanes() {
			select {
			case <-c.CaughtUp(lane):
				n++
			default:
			}
		}
		require.Contains(t, []int{0, c.Lanes()}, n)
		return n > 0
	}
	c.SetLag("logs", 0, 5)
	c.SetLag("logs", 0, 0)
	require.False(t, fired(), "a small lag at the live edge is not a backlog")
	c.SetLag("logs", 0, catchUpLag)
	c.SetLag("logs", 1, 2*catchUpLag)
	require.True(t, c.CatchingUp())
	c.SetLag("logs", 0, 0)
	require.False(t, fired(), "partition 1 is still catching up")
	c.SetLag("logs", 1, 3)
	require.True(t, fired())
	require.False(t, c.CatchingUp())
	require.False(t, fired(), "once")
}

// TestFull: Full fires once per Take when a quarter of a lane's share of the
// pending cap is reached in it, so that the lane's flusher writes at once
// rather than at its next tick.
func TestFull(t *testing.T) {
	require.Equal(t, 2, counterLanes, "this test's partitions assume two lanes")
	c := NewCounter(time.Minute, NewStreams(Limits{}), Limits{MaxPendingCells: 32}) // 16 per lane
	fired := func(lane int) bool {
		select {
		case <-c.Full(lane):
			return true
		default:
			return false
		}
	}
	apply := func(partition int32, i int) {
		t.Helper()
		_, err := c.Apply(msgAt(partition, int64(i+1), ct0), stage(cev("acme", "s"+strconv.Itoa(i), ct0)))
		require.NoError(t, err)
	}
	apply(0, 0) // two cells: an arrival and an event cell
	require.False(t, fired(0))
	apply(1, 1) // partition 1 is in lane 1
	apply(3, 2)
	require.False(t, fired(0))
	require.True(t, fired(1), "4 of 16 cells pending in lane 1")
	apply(0, 3)
	require.True(t, fired(0), "4 of 16 cells pending in lane 0")
	apply(0, 4)
	require.False(t, fired(0), "once per Take")
	b, _ := c.TakeLane(0)
	require.Len(t, b.Counts, 6)
	require.Equal(t, 4, c.Pending(), "lane 1's counts are still pending")
	apply(2, 5)
	apply(0, 6)
	require.True(t, fired(0), "again after a Take")
}

// Take hands out its counts sorted by (tenant, source, clock, bucket), the
// counts table's key, across Takes that add streams and forget idle ones
// (whose ids are then reused by other streams), and loses none.
func TestTakeSortsCounts(t *testing.T) {
	c := NewCounter(time.Minute, NewStreams(Limits{MaxStreams: 40, MaxStreamsPerTenant: 40, StreamIdle: time.Minute}), Limits{})
	r := rand.New(rand.NewPCG(1, 2))
	offset := int64(0)
	many := 0 // rounds in which t5/s0 was counted
	for round := range 12 {
		at := ct0.Add(time.Duration(round) * 10 * time.Minute) // older streams go idle
		want := map[string]uint64{}
		for k := range 20 { // one stream with many buckets in one Take (catching up)
			ev := at.Add(-time.Duration(19-k) * time.Minute)
			offset++
			refused, err := c.Apply(msgAt(0, offset, at), stage(cev("t5", "s0", ev)))
			require.NoError(t, err)
			if refused == 0 {
				want["t5/s0/"+strconv.FormatInt(storage.BucketStart(ev, time.Minute), 10)]++
			}
		}
		for range 200 {
			// Names with shared prefixes and lengths that sort differently
			// as keys than as concatenations: "t1"/"zz" < "t10"/"a".
			tenant := "t" + strconv.Itoa(r.IntN(12))
			source := strings.Repeat("s", 1+r.IntN(2)) + strconv.Itoa(r.IntN(3)+round)
			ev := at.Add(-time.Duration(r.IntN(3)) * time.Minute)
			offset++
			// Through partitions of different shards: a stream's cells of
			// several shards become one count.
			refused, err := c.Apply(msgAt(int32(r.IntN(2*counterShards)), offset, at), stage(cev(tenant, source, ev)))
			require.NoError(t, err)
			if refused == 0 {
				want[tenant+"/"+source+"/"+strconv.FormatInt(storage.BucketStart(ev, time.Minute), 10)]++
			}
		}
		b := take(c)
		for i := 1; i < len(b.Counts); i++ { // strictly: one count per key
			x, y := b.Counts[i-1], b.Counts[i]
			require.Negative(t, cmp.Or(strings.Compare(x.Tenant, y.Tenant), strings.Compare(x.Source, y.Source),
				cmp.Compare(x.Clock, y.Clock), cmp.Compare(x.Bucket, y.Bucket)), "round %d: %+v before %+v", round, x, y)
		}
		got := map[string]uint64{}
		for _, x := range b.Counts {
			if x.Clock == storage.Event {
				got[x.Tenant+"/"+x.Source+"/"+strconv.FormatInt(x.Bucket, 10)] += x.Events
			}
		}
		require.Equal(t, want, got, "round %d", round)
		if got["t5/s0/"+strconv.FormatInt(storage.BucketStart(at, time.Minute), 10)] > 0 {
			many++
		}
	}
	require.Greater(t, many, 3, "the stream with many buckets was counted in a few rounds")
}

func TestTakeMergesShards(t *testing.T) {
	// One stream's events through partitions 1, 2 and 1+counterShards: two
	// shards, one of them holding two partitions.
	c := NewCounter(time.Minute, NewStreams(Limits{}), Limits{})
	m := ct0.Unix()
	apply := func(p int32, next int64, arrival time.Time, late ...time.Duration) {
		s := &Staged{}
		for _, l := range late {
			s.Add(cev("acme", "fw", arrival.Add(-l)))
		}
		_, err := c.Apply(msgAt(p, next, arrival), s)
		require.NoError(t, err)
	}
	apply(1, 5, ct0.Add(30*time.Second), 0, 10*time.Second)
	apply(2, 7, ct0.Add(10*time.Second), 10*time.Second, 5*time.Minute)
	apply(1+counterShards, 3, ct0.Add(50*time.Second), 20*time.Second)
	b := take(c)

	lateness := make([]uint64, storage.LatenessBucket(5*time.Minute)+1)
	for _, l := range []time.Duration{0, 10 * time.Second, 10 * time.Second, 5 * time.Minute, 20 * time.Second} {
		lateness[storage.LatenessBucket(l)]++
	}
	require.Equal(t, []storage.Count{
		{Tenant: "acme", Source: "fw", Clock: storage.Arrival, Bucket: m, Events: 5, Lateness: lateness, Arrival: m + 10},
		{Tenant: "acme", Source: "fw", Clock: storage.Event, Bucket: m - 300, Events: 1, Arrival: m + 10},
		{Tenant: "acme", Source: "fw", Clock: storage.Event, Bucket: m, Events: 4, Arrival: m + 50},
	}, b.Counts)
	slices.SortFunc(b.Offsets, func(x, y storage.Offset) int { return cmp.Compare(x.Partition, y.Partition) })
	require.Equal(t, []storage.Offset{
		{Topic: "logs", Partition: 1, Next: 5, ArrivalHW: ct0.Add(30 * time.Second)},
		{Topic: "logs", Partition: 2, Next: 7, ArrivalHW: ct0.Add(10 * time.Second)},
		{Topic: "logs", Partition: 1 + counterShards, Next: 3, ArrivalHW: ct0.Add(50 * time.Second)},
	}, b.Offsets)
	require.Zero(t, c.Pending())
}

// TestCellListsAndIndex: a stream's cells are found by walking its list while
// it has a few per clock, and by the index once it has more (catching up over
// many buckets); either way each bucket is one count, exact, across repeats
// in any order and on both clocks.
func TestCellListsAndIndex(t *testing.T) {
	c := NewCounter(time.Minute, NewStreams(Limits{}), Limits{})
	r := rand.New(rand.NewPCG(3, 4))
	want := map[[2]int64]uint64{}
	offset := int64(0)
	for _, buckets := range []int{1, listCells, listCells + 1, 3 * listCells} {
		clear(want)
		for range 5 * buckets {
			arrival := ct0.Add(time.Duration(r.IntN(buckets)) * time.Minute)
			ev := ct0.Add(-time.Duration(r.IntN(buckets)) * time.Minute)
			offset++
			_, err := c.Apply(msgAt(0, offset, arrival), stage(cev("acme", "fw", ev)))
			require.NoError(t, err)
			want[[2]int64{int64(storage.Arrival), storage.BucketStart(arrival, time.Minute)}]++
			want[[2]int64{int64(storage.Event), storage.BucketStart(ev, time.Minute)}]++
		}
		require.Equal(t, len(want), c.Pending(), "%d buckets: one cell per bucket and clock", buckets)
		got := map[[2]int64]uint64{}
		for _, x := range take(c).Counts {
			k := [2]int64{int64(x.Clock), x.Bucket}
			require.NotContains(t, got, k, "%d buckets: one count per bucket", buckets)
			got[k] = x.Events
		}
		require.Equal(t, want, got, "%d buckets", buckets)
	}
}

// BenchmarkCounterTake: one Take of 100 k streams' cells on both clocks,
// each stream counted through partitions of two shards (its cells merge), as
// after a flush interval of a busy ingest process. The Apply calls that fill
// the counter are not timed.
func BenchmarkCounterTake(b *testing.B) {
	const streams = 100_000
	c := NewCounter(time.Minute, NewStreams(Limits{}), Limits{})
	names := make([][]byte, streams)
	for i := range names {
		names[i] = []byte("tenant-" + strconv.Itoa(i/6))
	}
	src := [][]byte{[]byte("SignInLogs"), []byte("AuditLogs"), []byte("firewall"), []byte("dns"), []byte("edr"), []byte("proxy")}
	s := &Staged{}
	offset := int64(0)
	fill := func() {
		for i := range 2 * streams {
			s.Reset()
			s.Add(decode.Event{Tenant: names[i%streams], Source: src[i%streams%6], Time: ct0})
			offset++
			if _, err := c.Apply(msgAt(int32((i+i/streams)%8), offset, ct0.Add(time.Minute)), s); err != nil {
				b.Fatal(err)
			}
		}
	}
	fill()
	c.Take() // ranks every stream once, as the Takes of a running process have
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		fill()
		b.StartTimer()
		if batch, _ := c.Take(); len(batch.Counts) != 2*streams {
			b.Fatalf("%d counts, want %d", len(batch.Counts), 2*streams)
		}
	}
}
