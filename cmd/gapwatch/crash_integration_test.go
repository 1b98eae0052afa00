package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/internal/servers"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/chstore"
)

// exactness is a topic, a database and the events produced, with the counts
// gapwatch must end up with, computed here from what was produced.
type exactness struct {
	brokers  []string
	topic    string
	store    *chstore.Store
	config   string // YAML for the children
	env      []string
	mu       sync.Mutex
	expected map[storage.Clock]map[[2]string]map[int64]uint64
	events   int
	base     time.Time
}

func newExactness(t *testing.T) *exactness {
	brokers := servers.Kafka(t)
	st, cfg := servers.ClickHouse(t)
	e := &exactness{brokers: brokers, topic: servers.Unique("crash_logs"), store: st,
		expected: map[storage.Clock]map[[2]string]map[int64]uint64{storage.Arrival: {}, storage.Event: {}},
		base:     time.Now().UTC().Truncate(time.Minute).Add(-40 * time.Minute)}
	servers.CreateTopic(t, brokers, e.topic, 6)
	// Short sessions so that a killed member's partitions move on quickly.
	e.config = filepath.Join(t.TempDir(), "gapwatch.yaml")
	require.NoError(t, os.WriteFile(e.config, []byte("ingest:\n  session_timeout: 6s\n  flush_interval: 300ms\n  write_timeout: 5s\n  rebalance_timeout: 20s\n"), 0o600))
	e.env = append(os.Environ(), "GAPWATCH_TEST_AS_MAIN=1", "GAPWATCH_LOG_LEVEL="+logLevel(),
		"GAPWATCH_INPUT_TOPICS="+e.topic, "GAPWATCH_GROUP="+servers.Unique("crash_group"),
		"GAPWATCH_CLICKHOUSE_DATABASE="+cfg.Database, "GAPWATCH_KAFKA_BROKERS="+brokers[0])
	return e
}

// produce sends n messages of 1–3 events each (plain JSON and Azure envelopes)
// over 20 streams, spread over 30 minutes of record timestamps.
func (e *exactness) produce(t *testing.T, seed uint64, n int, pace time.Duration) {
	rng := rand.New(rand.NewPCG(seed, 1))
	w := &kafka.Writer{Addr: kafka.TCP(e.brokers...), Topic: e.topic, Balancer: &kafka.RoundRobin{}, RequiredAcks: kafka.RequireAll, BatchTimeout: 2 * time.Millisecond}
	defer w.Close()
	batch := make([]kafka.Message, 0, 200)
	for i := range n {
		arrival := e.base.Add(time.Duration(rng.IntN(30*60_000)) * time.Millisecond)
		tenant, source := fmt.Sprintf("t%d", rng.IntN(5)), fmt.Sprintf("s%d", rng.IntN(4))
		var value string
		k := 1 + rng.IntN(3)
		evs := make([]time.Time, k)
		for j := range evs {
			evs[j] = arrival.Add(-time.Duration(rng.IntN(120_000)) * time.Millisecond)
		}
		if k == 1 {
			value = fmt.Sprintf(`{"tenant":%q,"source":%q,"time":%q,"n":%d}`, tenant, source, evs[0].Format(time.RFC3339Nano), i)
		} else {
			value = `{"records":[`
			for j, ev := range evs {
				if j > 0 {
					value += ","
				}
				value += fmt.Sprintf(`{"tenantId":%q,"category":%q,"time":%q}`, tenant, source, ev.Format("2006-01-02T15:04:05.0000000Z"))
			}
			value += "]}"
		}
		batch = append(batch, kafka.Message{Value: []byte(value), Time: arrival})
		e.mu.Lock()
		for _, ev := range evs {
			e.count(storage.Arrival, tenant, source, arrival)
			e.count(storage.Event, tenant, source, ev)
			e.events++
		}
		e.mu.Unlock()
		if len(batch) == cap(batch) || i == n-1 {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			require.NoError(t, w.WriteMessages(ctx, batch...))
			cancel()
			batch = batch[:0]
			time.Sleep(pace) // spread production over the kills
		}
	}
}

func (e *exactness) count(c storage.Clock, tenant, source string, at time.Time) {
	k := [2]string{tenant, source}
	if e.expected[c][k] == nil {
		e.expected[c][k] = map[int64]uint64{}
	}
	e.expected[c][k][storage.BucketStart(at, time.Minute)]++
}

// child is a `gapwatch run --role ingest,api` process.
type child struct {
	cmd  *exec.Cmd
	out  syncBuffer // written by exec's copier while the test reads it
	addr string
}

func (e *exactness) start(t *testing.T, env ...string) *child {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := &child{addr: ln.Addr().String()}
	ln.Close()
	c.cmd = exec.Command(os.Args[0], "run", "--role", "ingest,api", "--config", e.config)
	c.cmd.Env = append(append(e.env, "GAPWATCH_HTTP_ADDR="+c.addr), env...)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	require.NoError(t, c.cmd.Start())
	return c
}

// waitReady waits until the child's /readyz answers 200: partitions assigned.
func (c *child) waitReady(t *testing.T) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + c.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		require.True(t, time.Now().Before(deadline), "child not ready after 60s: %s", c.out.String())
		time.Sleep(100 * time.Millisecond)
	}
}

// stop stops the child gracefully and checks it exits 0.
func (c *child) stop(t *testing.T) {
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, c.cmd.Wait(), "graceful stop: %s", c.out.String())
}

// waitCaughtUp waits until the store's offsets reach the end of every partition.
func (e *exactness) waitCaughtUp(t *testing.T, timeout time.Duration) {
	servers.WaitStored(t, e.store, e.topic, servers.EndOffsets(t, e.brokers, e.topic, 6), timeout)
}

// verify checks every stream's every bucket on both clocks.
func (e *exactness) verify(t *testing.T) {
	ctx := context.Background()
	var total uint64
	for clock, streams := range e.expected {
		for k, buckets := range streams {
			pts, err := e.store.Rates(ctx, storage.RateQuery{Tenant: k[0], Source: k[1], Clock: clock,
				From: e.base.Add(-5 * time.Minute), To: e.base.Add(35 * time.Minute), Step: time.Minute})
			require.NoError(t, err)
			got := map[int64]uint64{}
			for _, p := range pts {
				if p.Events > 0 {
					got[p.T.Unix()] = p.Events
				}
				if clock == storage.Arrival {
					total += p.Events
				}
			}
			require.Equal(t, buckets, got, "%s %v", clock, k)
		}
	}
	require.Equal(t, uint64(e.events), total)
}

func TestIngestExactThroughSIGKILL(t *testing.T) {
	e := newExactness(t)
	var produced sync.WaitGroup
	produced.Add(1)
	go func() { defer produced.Done(); e.produce(t, 1, 60_000, 150*time.Millisecond) }()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	kills, atFailpoint := 0, 0
	for i := range 9 {
		switch i % 3 {
		case 0: // at a random instant: before, during or after joining, mid-fetch, mid-write
			c := e.start(t)
			time.Sleep(time.Duration(300+rng.IntN(4000)) * time.Millisecond)
			require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
			_ = c.cmd.Wait()
		case 1, 2: // exactly between storing a batch and committing it, or just before storing it
			fp := map[int]string{1: "after-write", 2: "before-write"}[i%3]
			c := e.start(t, fmt.Sprintf("GAPWATCH_FAILPOINT=%s:%d", fp, 1+rng.IntN(3)))
			exited := make(chan error, 1)
			go func() { exited <- c.cmd.Wait() }()
			select {
			case err := <-exited:
				require.Error(t, err, "the failpoint kills the child: %s", c.out.String())
				require.Contains(t, err.Error(), "killed")
				atFailpoint++
			case <-time.After(20 * time.Second): // nothing left to write: kill it anyway
				require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
				<-exited
			}
		}
		kills++
	}
	produced.Wait()
	c := e.start(t)
	c.waitReady(t)
	e.waitCaughtUp(t, 3*time.Minute)
	c.stop(t)
	e.verify(t)
	require.GreaterOrEqual(t, atFailpoint, 2, "kills landed on the write path's failpoints")
	t.Logf("%d events in 60000 messages exact after %d SIGKILLs (%d at write-path failpoints)", e.events, kills, atFailpoint)
}

func TestIngestExactThroughRebalance(t *testing.T) {
	e := newExactness(t)
	var produced sync.WaitGroup
	produced.Add(1)
	go func() { defer produced.Done(); e.produce(t, 2, 40_000, 30*time.Millisecond) }()

	a := e.start(t)
	a.waitReady(t)
	time.Sleep(2 * time.Second)
	b := e.start(t) // joins: the group rebalances across two processes
	b.waitReady(t)
	time.Sleep(3 * time.Second)
	a.stop(t) // leaves: b takes everything over
	produced.Wait()
	e.waitCaughtUp(t, 3*time.Minute)
	b.stop(t)
	if os.Getenv("GAPWATCH_TEST_CHILD_LOG") != "" {
		t.Logf("a:\n%s\nb:\n%s", a.out.String(), b.out.String())
	}
	e.verify(t)
	t.Logf("%d events exact across two processes sharing the group", e.events)
}

func logLevel() string {
	if l := os.Getenv("GAPWATCH_TEST_CHILD_LOG"); l != "" {
		return l
	}
	return "warn"
}
