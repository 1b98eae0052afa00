// Command benchingest measures gapwatch's end-to-end ingest throughput against
// a reference consumer, on the real Kafka and ClickHouse that `make services`
// starts (`make bench` runs it).
//
// It renders at least -events realistic security-log events (simulate's mix:
// plain JSON firewall, EDR and DNS events, Azure Monitor `{"records":[...]}` and
// CloudTrail `{"Records":[...]}` envelopes of up to 10 records, ~300 B per
// event) for -streams distinct (tenant, source) streams, every one of them
// active, and produces them into a fresh topic of -partitions partitions.
// Then, -runs times and alternating, it times
//
//   - kcat -C -o beginning -e (Debian's kcat, librdkafka) reading the whole
//     topic into /dev/null: the cost of only fetching the records, the
//     reference (one untimed pass first checks, through a pipe, that kcat
//     delivers every message); and
//   - the real gapwatch binary, `gapwatch run --role ingest`, with a fresh
//     consumer group and a fresh ClickHouse database: from process start until
//     the offsets it stored in ClickHouse (atomically with the counts) reach
//     the end of every partition. That is consume + decode + count on both
//     clocks + durable store, start-up and group join included.
//
// It samples gapwatch's resident memory (VmRSS every 100 ms, and VmHWM at the
// end), checks that the stored counts add up to exactly the events produced on
// both clocks and cover every stream, and prints the medians, the throughput
// ratio gapwatch/kcat and the targets (ratio ≥ 0.5, RSS ≤ 300 MB). Per run it
// also shows the CPU the consumer, the broker, ClickHouse and the rest of the
// machine used: the machine has few cores, and a measurement that other
// processes disturbed is taken again (-retries). A missed target is reported,
// not an error; the exit status is 1 only when something failed (a server, a
// wrong count), 2 on bad flags.
//
// With -cpuprofile FILE it adds one in-process ingest run (the same ingest
// code and configuration as the binary, inside this process) under the Go CPU
// profiler; -memprofile and -mutexprofile add heap and lock profiles of it,
// -trace an execution trace (where goroutines wait: go tool trace -pprof=sync).
// -log-dir keeps the gapwatch children's logs (-log-level debug shows each store).
//
//	go run ./cmd/benchingest                          # 1 M events, 100 k streams, 3 runs
//	go run ./cmd/benchingest -events 100000 -runs 1   # quick
//	go run ./cmd/benchingest -runs 1 -cpuprofile cpu.pprof -mutexprofile mutex.pprof -trace run.trace
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/valyala/fastjson"

	"github.com/gapwatch/gapwatch/config"
	"github.com/gapwatch/gapwatch/ingest"
	"github.com/gapwatch/gapwatch/simulate"
	"github.com/gapwatch/gapwatch/storage/chstore"
)

// Targets of the issue.
const (
	targetRatio = 0.5
	targetRSSMB = 300
)

type options struct {
	brokers     []string
	chAddr      string
	events      int
	streams     int
	partitions  int
	runs        int
	span, tick  time.Duration
	seed        uint64
	compression string
	gapwatch    string
	kcat        string
	logLevel    string
	logDir      string
	traceOut    string
	timeout     time.Duration
	cpuprofile  string
	memprofile  string
	mutexprof   string
	quietWait   time.Duration
	retries     int
	childEnv    []string
	verbose     bool
}

func main() {
	var o options
	brokers := flag.String("brokers", envOr("GAPWATCH_KAFKA_BROKERS", "127.0.0.1:9092"), "Kafka bootstrap brokers, comma separated")
	flag.StringVar(&o.chAddr, "clickhouse", envOr("GAPWATCH_CLICKHOUSE_ADDR", "127.0.0.1:9000"), "ClickHouse native address")
	flag.IntVar(&o.events, "events", 1_000_000, "events to produce (every record of an envelope counts)")
	flag.IntVar(&o.streams, "streams", 100_000, "distinct (tenant, source) streams, all active (6 per simulated tenant, rounded down; ingest's default cap is 100000)")
	flag.IntVar(&o.partitions, "partitions", 6, "partitions of the benchmark topic")
	flag.IntVar(&o.runs, "runs", 3, "measurements of each consumer (alternating kcat, gapwatch); medians are reported")
	flag.DurationVar(&o.span, "span", 5*time.Minute, "simulated time the events arrive over (sets the event rate)")
	flag.DurationVar(&o.tick, "tick", time.Minute, "simulator tick: exporters batch a stream's records of one tick into envelopes of up to 10")
	flag.Uint64Var(&o.seed, "seed", 1, "simulator seed")
	flag.StringVar(&o.compression, "compression", "none", "producer compression: none, gzip, snappy, lz4, zstd")
	flag.StringVar(&o.gapwatch, "gapwatch", "", "gapwatch binary to run (default: build ./cmd/gapwatch into a temporary directory)")
	flag.StringVar(&o.kcat, "kcat", "kcat", "kcat binary of the reference measurement")
	flag.StringVar(&o.logLevel, "log-level", "warn", "GAPWATCH_LOG_LEVEL of the gapwatch child")
	flag.StringVar(&o.logDir, "log-dir", "", "keep the gapwatch children's logs in this directory (gapwatch-<run>.log)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "bound on each step (produce, one measurement)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "also run ingest once in-process under the CPU profiler and write the profile here")
	flag.StringVar(&o.memprofile, "memprofile", "", "with -cpuprofile: write the heap profile of the in-process run's largest live heap here")
	flag.StringVar(&o.mutexprof, "mutexprofile", "", "with -cpuprofile: write the in-process run's mutex contention profile here")
	flag.StringVar(&o.traceOut, "trace", "", "with -cpuprofile: write the in-process run's execution trace here (go tool trace)")
	flag.DurationVar(&o.quietWait, "quiet-wait", 2*time.Minute, "before each measurement, wait up to this long for the rest of the machine to use under a third of a core (0: don't wait)")
	flag.IntVar(&o.retries, "retries", 2, "measure again, up to this many times, when other processes used over a third of a core meanwhile")
	flag.Func("env", "extra NAME=VALUE in the gapwatch child's environment, e.g. GOMEMLIMIT=250MiB (repeatable)", func(v string) error {
		if !strings.Contains(v, "=") {
			return errors.New("want NAME=VALUE")
		}
		o.childEnv = append(o.childEnv, v)
		return nil
	})
	flag.BoolVar(&o.verbose, "v", false, "print progress details")
	flag.Parse()
	o.brokers = splitList(*brokers)
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "benchingest:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "benchingest:", err)
		os.Exit(1)
	}
}

func (o options) check() error {
	switch {
	case len(o.brokers) == 0:
		return errors.New("-brokers: empty")
	case o.events < 1:
		return errors.New("-events must be positive")
	case o.streams < 6:
		return errors.New("-streams must be at least 6 (one simulated tenant)")
	case o.streams/6 > 100_000:
		return errors.New("-streams: at most 600000")
	case o.partitions < 1 || o.runs < 1:
		return errors.New("-partitions and -runs must be positive")
	case o.span < time.Second || o.tick < time.Second || o.tick > o.span:
		return errors.New("-span and -tick must be ≥ 1s, -tick ≤ -span")
	}
	if _, err := codec(o.compression); err != nil {
		return err
	}
	if (o.memprofile != "" || o.mutexprof != "") && o.cpuprofile == "" {
		return errors.New("-memprofile and -mutexprofile need -cpuprofile (they profile the in-process run)")
	}
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func unique(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func progress(o options, format string, args ...any) {
	if o.verbose {
		fmt.Fprintf(os.Stderr, "benchingest: "+format+"\n", args...)
	}
}

// ---------------------------------------------------------------------------
// the whole benchmark

// result is one timed consumption of the whole topic.
type result struct {
	seconds    float64
	cpuSeconds float64 // user + system of the consumer process
	rssPeakMB  float64 // gapwatch only
	firstWrite float64 // gapwatch only: seconds from start to the first stored progress
	load       load    // what the machine did meanwhile
	rows       uint64  // gapwatch only: count rows stored
	rollup     rollupCost
}

// rollupCost is what rolling up the run's stored counts into the hourly
// rollup took afterwards: work the insert path no longer does, done once per
// write day (chstore.Store.Rollup).
type rollupCost struct {
	seconds, chCPU float64
}

// load is the CPU the rest of the machine used during one measurement, in
// core-seconds: the broker, ClickHouse, and everything else (this harness and
// whatever else runs on the machine) besides the measured consumer.
type load struct{ kafka, clickhouse, other float64 }

// cpuSnap is a reading of the machine's and the servers' CPU counters.
type cpuSnap struct {
	at                       time.Time
	machine, kafka, ch, self float64
}

// servers are the pids of the broker and ClickHouse, found once by command line (0: not found).
var servers struct {
	once      sync.Once
	kafka, ch int
}

func findServers() {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		switch {
		case slices.Contains(args, "kafka.Kafka") && servers.kafka == 0:
			servers.kafka = pid
		case strings.HasSuffix(args[0], "clickhouse-server") && servers.ch == 0:
			servers.ch = pid
		}
	}
}

func snapCPU() cpuSnap {
	servers.once.Do(findServers)
	s := cpuSnap{at: time.Now()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
		for i, v := range f[1:] {
			if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user
				continue
			}
			x, _ := strconv.ParseFloat(v, 64)
			s.machine += x / 100
		}
	}
	if servers.kafka != 0 {
		s.kafka, _ = procCPU(servers.kafka)
	}
	if servers.ch != 0 {
		s.ch, _ = procCPU(servers.ch)
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	return s
}

// waitQuiet waits, up to o.quietWait, until the processes other than the
// broker, ClickHouse and this harness use under a third of a core.
func waitQuiet(ctx context.Context, o options) {
	if o.quietWait <= 0 {
		return
	}
	deadline := time.Now().Add(o.quietWait)
	noted := false
	for {
		s0 := snapCPU()
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		s1 := snapCPU()
		other := (s1.machine - s0.machine) - (s1.kafka - s0.kafka) - (s1.ch - s0.ch) - (s1.self - s0.self)
		cores := other / s1.at.Sub(s0.at).Seconds()
		switch {
		case cores < 1.0/3:
			return
		case time.Now().After(deadline):
			fmt.Printf("  NOTE: other processes keep %.1f cores busy; measuring anyway (see \"other s\" below)\n", cores)
			return
		case !noted:
			fmt.Fprintf(os.Stderr, "benchingest: other processes use %.1f cores; waiting up to %s for them to settle\n", cores, o.quietWait)
			noted = true
		}
	}
}

// contended marks a run during which other processes used over a third of a core.
func contended(r result) string {
	if r.load.other > r.seconds/3 {
		return " *contended"
	}
	return ""
}

// since is the load between s0 and s1 of a measurement whose consumer used consumerCPU.
func since(s0, s1 cpuSnap, consumerCPU float64) load {
	l := load{kafka: s1.kafka - s0.kafka, clickhouse: s1.ch - s0.ch}
	l.other = max(0, (s1.machine-s0.machine)-consumerCPU-l.kafka-l.clickhouse)
	return l
}

func run(ctx context.Context, o options) (err error) {
	tmp, err := os.MkdirTemp("", "benchingest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	bin := o.gapwatch
	if bin == "" {
		bin = filepath.Join(tmp, "gapwatch")
		progress(o, "building ./cmd/gapwatch")
		bctx, cancel := context.WithTimeout(ctx, o.timeout)
		out, err := exec.CommandContext(bctx, "go", "build", "-o", bin, "./cmd/gapwatch").CombinedOutput()
		cancel()
		if err != nil {
			return fmt.Errorf("building ./cmd/gapwatch (run from the repository root, or pass -gapwatch): %v\n%s", err, out)
		}
	} else {
		if bin, err = filepath.Abs(bin); err != nil { // the child runs in tmp
			return err
		}
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("-gapwatch: %w", err)
		}
	}

	// Fail fast when a server is down, before minutes of generating.
	ch, err := openClickHouse(ctx, o.chAddr)
	if err != nil {
		return err
	}
	defer ch.Close()
	client := &kafka.Client{Addr: kafka.TCP(o.brokers...), Timeout: 30 * time.Second}
	if _, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}}); err != nil {
		return fmt.Errorf("Kafka at %s is not answering (make services): %w", strings.Join(o.brokers, ","), err)
	}

	began := time.Now()
	w, err := generate(o.events, o.streams, o.span, o.tick, o.seed, time.Now())
	if err != nil {
		return err
	}
	progress(o, "generated %d messages, %d events in %s", len(w.msgs), w.events, time.Since(began).Round(time.Millisecond))

	topic := unique("bench_ingest_")
	var cleanups []func(context.Context)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, f := range slices.Backward(cleanups) {
			f(cctx)
		}
	}()
	if err := createTopic(ctx, client, topic, o.partitions); err != nil {
		return err
	}
	cleanups = append(cleanups, func(ctx context.Context) {
		// gapwatch would create <topic>.dlq only for rejected input; delete it if it did.
		resp, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic, topic + ingest.DLQSuffix}})
		if err == nil {
			err = resp.Errors[topic]
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchingest: deleting topic %s: %v\n", topic, err)
		}
	})
	pctx, cancel := context.WithTimeout(ctx, o.timeout)
	produceSeconds, err := produce(pctx, o, topic, w.msgs)
	cancel()
	if err != nil {
		return err
	}
	ends, err := endOffsets(ctx, client, topic, o.partitions)
	if err != nil {
		return err
	}
	var onTopic int64
	for _, e := range ends {
		onTopic += e
	}
	if onTopic != int64(len(w.msgs)) {
		return fmt.Errorf("topic %s holds %d records, produced %d", topic, onTopic, len(w.msgs))
	}
	nmsgs := len(w.msgs)
	w.msgs = nil // hand the memory back before measuring
	runtime.GC()
	debug.FreeOSMemory()

	fmt.Printf("ingest benchmark: %d events in %d messages (mean %.0f B/message, %.0f B/event), %d partitions, %d streams active\n",
		w.events, nmsgs, float64(w.bytes)/float64(nmsgs), float64(w.bytes)/float64(w.events), o.partitions, w.streams)
	fmt.Printf("  traffic: simulate, %d tenants, %s of arrivals from %s (%d of the streams topped up with one rewritten message to be active), compression %s\n",
		w.tenants, w.last.Sub(w.first).Round(time.Second), w.first.UTC().Format("15:04:05"), w.toppedUp, o.compression)
	fmt.Printf("  produced in %.1f s (%.0f messages/s, acks=all); topic %s\n", produceSeconds, float64(nmsgs)/produceSeconds, topic)
	if len(o.childEnv) > 0 {
		fmt.Printf("  gapwatch runs with extra environment %s\n", strings.Join(o.childEnv, " "))
	}

	var groups []string
	cleanups = append(cleanups, func(ctx context.Context) {
		if len(groups) == 0 {
			return
		}
		// A member that did not leave stays until its session times out (10 s).
		for {
			resp, err := client.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: groups})
			var left []string
			if err == nil {
				for g, e := range resp.Errors {
					if errors.Is(e, kafka.NonEmptyGroup) {
						left = append(left, g)
					} else if e != nil {
						err = e
					}
				}
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "benchingest: deleting consumer groups: %v\n", err)
				return
			}
			if groups = left; len(groups) == 0 {
				return
			}
			select {
			case <-ctx.Done():
				fmt.Fprintf(os.Stderr, "benchingest: consumer groups %v still have members; not deleted\n", groups)
				return
			case <-time.After(time.Second):
			}
		}
	})

	refName := "kcat -C (librdkafka)"
	var kcats, gws []result
	var fallbackReason string
	cctx, cancel := context.WithTimeout(ctx, o.timeout)
	checkSecs, err := checkKcat(cctx, o, topic, int64(nmsgs), w.bytes)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		fallbackReason = err.Error()
		refName = "kafka-go Reader (FALLBACK)"
		fmt.Printf("  NOTE: kcat failed (%v); the reference is a plain kafka-go partition reader instead\n", err)
	} else {
		fmt.Printf("  kcat check: all %d messages delivered (piped into a counter: %.2f s; the timed runs write to /dev/null)\n", nmsgs, checkSecs)
	}
	// measure runs f after waiting for a quiet machine, again (up to o.retries
	// times) while other processes disturbed it.
	retried := 0
	measure := func(what string, f func(ctx context.Context) (result, error)) (result, error) {
		for attempt := 0; ; attempt++ {
			waitQuiet(ctx, o)
			mctx, cancel := context.WithTimeout(ctx, o.timeout)
			r, err := f(mctx)
			cancel()
			if err != nil || contended(r) == "" || attempt >= o.retries {
				return r, err
			}
			retried++
			fmt.Fprintf(os.Stderr, "benchingest: %s: other processes used %.1f core-s in %.1f s; measuring again\n", what, r.load.other, r.seconds)
		}
	}
	for i := range o.runs {
		// Reference.
		var r result
		var err error
		if fallbackReason == "" {
			r, err = measure("kcat", func(ctx context.Context) (result, error) { return timeKcat(ctx, o, topic) })
			if err != nil {
				return err // kcat worked in the check: a real failure
			}
		}
		if fallbackReason != "" {
			r, err = measure("kafka-go reader", func(ctx context.Context) (result, error) { return timeKafkaGo(ctx, o, topic, ends) })
			if err != nil {
				return fmt.Errorf("fallback reference: %w", err)
			}
		}
		kcats = append(kcats, r)
		progress(o, "run %d: %s %.2f s", i+1, refName, r.seconds)

		// gapwatch: a new consumer group and database each time, so it reads everything.
		attempt := 0
		g, err := measure("gapwatch", func(ctx context.Context) (result, error) {
			group := unique("gapwatch-bench-")
			groups = append(groups, group)
			attempt++
			return timeGapwatch(ctx, o, ch, bin, tmp, topic, group, ends, w, fmt.Sprintf("%d.%d", i+1, attempt))
		})
		if err != nil {
			return fmt.Errorf("gapwatch run %d: %w", i+1, err)
		}
		gws = append(gws, g)
		progress(o, "run %d: gapwatch %.2f s (first write after %.2f s), peak RSS %.0f MB", i+1, g.seconds, g.firstWrite, g.rssPeakMB)
	}
	if retried > 0 {
		fmt.Printf("  NOTE: %d measurements were disturbed by other processes and taken again\n", retried)
	}

	var prof *result
	if o.cpuprofile != "" {
		p, err := measure("in-process gapwatch", func(ctx context.Context) (result, error) {
			return profileInProcess(ctx, o, ch, tmp, topic, unique("gapwatch-bench-prof-"), ends, w)
		})
		if err != nil {
			return fmt.Errorf("in-process profile run: %w", err)
		}
		prof = &p
	}

	printTable(os.Stdout, o, w, int64(nmsgs), refName, kcats, gws, prof)
	return nil
}

func printTable(out io.Writer, o options, w *workload, msgs int64, refName string, kcats, gws []result, prof *result) {
	mb := float64(w.bytes) / 1e6
	line := func(name string, rs []result, rss bool) float64 {
		secs := median(rs, func(r result) float64 { return r.seconds })
		cpu := median(rs, func(r result) float64 { return r.cpuSeconds })
		rssCol := ""
		if rss {
			rssCol = fmt.Sprintf("%6.0f MB", slices.MaxFunc(rs, func(a, b result) int { return cmp.Compare(a.rssPeakMB, b.rssPeakMB) }).rssPeakMB)
		}
		fmt.Fprintf(out, "%-27s %12.0f %12.0f %8.1f %8.2f %10.1f   %s\n", name, float64(w.events)/secs, float64(msgs)/secs, mb/secs, secs, cpu, rssCol)
		return float64(w.events) / secs
	}
	fmt.Fprintf(out, "\n%-27s %12s %12s %8s %8s %10s   %s\n", fmt.Sprintf("median of %d", len(gws)), "events/s", "messages/s", "MB/s", "wall s", "CPU s", "peak RSS")
	ref := line(refName, kcats, false)
	gw := line("gapwatch ingest", gws, true)
	if prof != nil {
		fmt.Fprintf(out, "%-27s %12.0f %12.0f %8.1f %8.2f %10s   (in-process, CPU profile in %s)\n", "gapwatch ingest, profiled", float64(w.events)/prof.seconds, float64(msgs)/prof.seconds, mb/prof.seconds, prof.seconds, "", o.cpuprofile)
	}
	ratio := gw / ref
	peak := slices.MaxFunc(gws, func(a, b result) int { return cmp.Compare(a.rssPeakMB, b.rssPeakMB) }).rssPeakMB
	fmt.Fprintf(out, "ratio gapwatch/%s: %.2f (target ≥ %.1f: %s)   RSS target ≤ %d MB with %d streams: %s\n",
		strings.Fields(refName)[0], ratio, targetRatio, okNot(ratio >= targetRatio), targetRSSMB, w.streams, okNot(peak <= targetRSSMB))
	fmt.Fprintf(out, "exact: stored events == produced events (%d, both clocks), %d streams stored, every run: ok\n", w.events, w.streams)
	fmt.Fprintf(out, "hourly rollup of a run's counts, once their write day is over (not in the figures above): %.2f s, ClickHouse %.2f core-s (median)\n",
		median(gws, func(r result) float64 { return r.rollup.seconds }), median(gws, func(r result) float64 { return r.rollup.chCPU }))
	fmt.Fprintf(out, "\nper run (CPU in core-seconds during the run; \"other\" is the rest of the machine: this harness and anything else running)\n")
	fmt.Fprintf(out, "%-4s %-12s %7s %8s %9s %9s %8s %7s %10s %10s\n", "run", "consumer", "wall s", "CPU s", "broker s", "CH s", "other s", "RSS MB", "1st write", "rows")
	ref0 := strings.Fields(refName)[0]
	for i := range gws {
		k, g := kcats[i], gws[i]
		fmt.Fprintf(out, "%-4d %-12s %7.2f %8.2f %9.2f %9.2f %8.2f%s\n", i+1, ref0, k.seconds, k.cpuSeconds, k.load.kafka, k.load.clickhouse, k.load.other, contended(k))
		fmt.Fprintf(out, "%-4d %-12s %7.2f %8.2f %9.2f %9.2f %8.2f %7.0f %9.2fs %10d%s\n", i+1, "gapwatch", g.seconds, g.cpuSeconds, g.load.kafka, g.load.clickhouse, g.load.other, g.rssPeakMB, g.firstWrite, g.rows, contended(g))
	}
	if prof != nil {
		fmt.Fprintf(out, "%-4s %-12s %7.2f %8.2f %9.2f %9.2f %8.2f %7s %10s %10d   in-process; its CPU s includes the harness\n", "prof", "gapwatch", prof.seconds, prof.cpuSeconds, prof.load.kafka, prof.load.clickhouse, prof.load.other, "", "", prof.rows)
	}
}

func okNot(ok bool) string {
	if ok {
		return "ok"
	}
	return "NOT MET"
}

// median of f over rs; the mean of the middle two for an even count.
func median(rs []result, f func(result) float64) float64 {
	if len(rs) == 0 {
		return 0
	}
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// ---------------------------------------------------------------------------
// traffic

// workload is the generated traffic and what it holds.
type workload struct {
	msgs        []kafka.Message
	events      int   // records over all messages
	bytes       int64 // sum of the values' lengths
	streams     int   // distinct (tenant, source) with at least one event
	tenants     int
	toppedUp    int // streams the simulator left silent, given one message
	first, last time.Time
}

// generate renders at least n events (exactly n unless one envelope overshoots
// at the very end, which trimming avoids in practice) from simulate's generator
// with streams/6 tenants, arriving over about span, in ticks of tick, sorted by
// arrival. Streams the Poisson draws left silent get one message rewritten from
// another stream of the same source, so every stream is active.
func generate(n, streams int, span, tick time.Duration, seed uint64, now time.Time) (*workload, error) {
	tenants := streams / 6
	start := now.Add(-span - tick).Truncate(time.Minute)
	g := simulate.NewGenerator(simulate.Config{Tenants: tenants, Rate: float64(n) / span.Seconds(), Seed: seed}, start)

	type item struct {
		m      kafka.Message
		events int
	}
	var items []item
	perStream := map[string]int{} // messages per stream key tenant/source
	total := 0
	var p fastjson.Parser
	for at, i := start, 0; total < n; at, i = at.Add(tick), i+1 {
		if i > 100_000 {
			return nil, errors.New("simulator produces no events")
		}
		ms, _ := g.Tick(at, tick)
		slices.SortStableFunc(ms, func(a, b simulate.Message) int { return a.Time.Compare(b.Time) })
		for _, m := range ms {
			k, err := countEvents(&p, m.Value)
			if err != nil {
				return nil, fmt.Errorf("simulated message %.80q: %w", m.Value, err)
			}
			items = append(items, item{kafka.Message{Key: m.Key, Value: m.Value, Time: m.Time}, k})
			perStream[string(m.Key)]++
			total += k
		}
	}

	// Donors: per source, the message with the fewest records.
	donors := map[string]int{}
	for i, it := range items {
		_, source := splitKey(it.m.Key)
		if d, ok := donors[source]; !ok || it.events < items[d].events {
			donors[source] = i
		}
	}
	topped := 0
	for _, s := range g.Streams() {
		key := s.Tenant + "/" + s.Source
		if perStream[key] > 0 {
			continue
		}
		d, ok := donors[s.Source]
		if !ok {
			return nil, fmt.Errorf("no message of source %s to model stream %s on", s.Source, key)
		}
		donor := items[d]
		dt, _ := splitKey(donor.m.Key)
		v, err := retenant(donor.m.Value, dt, s.Tenant)
		if err != nil {
			return nil, err
		}
		items = append(items, item{kafka.Message{Key: []byte(key), Value: v, Time: donor.m.Time}, donor.events})
		perStream[key]++
		total += donor.events
		topped++
	}
	slices.SortStableFunc(items, func(a, b item) int { return a.m.Time.Compare(b.m.Time) })

	// Trim the newest messages down to n events, never a stream's last message.
	keep := make([]bool, len(items))
	for i := range keep {
		keep[i] = true
	}
	for i := len(items) - 1; i >= 0 && total > n; i-- {
		it := items[i]
		if total-it.events >= n && perStream[string(it.m.Key)] > 1 {
			keep[i] = false
			total -= it.events
			perStream[string(it.m.Key)]--
		}
	}
	w := &workload{tenants: tenants, toppedUp: topped, events: total}
	w.msgs = make([]kafka.Message, 0, len(items))
	active := map[string]bool{}
	for i, it := range items {
		if !keep[i] {
			continue
		}
		w.msgs = append(w.msgs, it.m)
		w.bytes += int64(len(it.m.Value))
		active[string(it.m.Key)] = true
	}
	w.streams = len(active)
	w.first, w.last = w.msgs[0].Time, w.msgs[len(w.msgs)-1].Time
	return w, nil
}

func splitKey(k []byte) (tenant, source string) {
	t, s, _ := strings.Cut(string(k), "/")
	return t, s
}

// countEvents returns the number of events gapwatch must count in a simulated
// message: the length of an Azure `records` or CloudTrail `Records` array, else 1.
func countEvents(p *fastjson.Parser, v []byte) (int, error) {
	val, err := p.ParseBytes(v)
	if err != nil {
		return 0, err
	}
	o, err := val.Object()
	if err != nil {
		return 0, err
	}
	for _, k := range []string{"records", "Records"} {
		if a := o.Get(k); a != nil && a.Type() == fastjson.TypeArray {
			arr, _ := a.Array()
			return len(arr), nil
		}
	}
	return 1, nil
}

// retenant rewrites a simulated message of tenant from to tenant to: every JSON
// string equal to from, and Azure's resourceId path /tenants/from/.
func retenant(v []byte, from, to string) ([]byte, error) {
	q := func(s string) []byte { return strconv.AppendQuote(nil, s) }
	out := bytes.ReplaceAll(v, q(from), q(to))
	out = bytes.ReplaceAll(out, []byte("/tenants/"+from+"/"), []byte("/tenants/"+to+"/"))
	if bytes.Equal(out, v) || bytes.Contains(out, q(from)) {
		return nil, fmt.Errorf("rewriting tenant %s to %s in %.80q failed", from, to, v)
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Kafka

func codec(name string) (kafka.Compression, error) {
	switch name {
	case "none", "":
		return 0, nil
	case "gzip":
		return compress.Gzip, nil
	case "snappy":
		return compress.Snappy, nil
	case "lz4":
		return compress.Lz4, nil
	case "zstd":
		return compress.Zstd, nil
	}
	return 0, fmt.Errorf("-compression %q: want none, gzip, snappy, lz4 or zstd", name)
}

func createTopic(ctx context.Context, client *kafka.Client, name string, partitions int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: name, NumPartitions: partitions, ReplicationFactor: 1}}})
	if err == nil {
		err = resp.Errors[name]
	}
	if err != nil {
		return fmt.Errorf("creating topic %s: %w", name, err)
	}
	for { // until every partition has a leader
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{name}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == partitions {
			ok := true
			for _, p := range md.Topics[0].Partitions {
				ok = ok && p.Error == nil && p.Leader.ID >= 0
			}
			if ok {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s has no leaders after 30s", name)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// endOffsets returns the next offset to be written of every partition.
func endOffsets(ctx context.Context, client *kafka.Client, topic string, partitions int) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for p := range partitions {
		req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p))
	}
	resp, err := client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("listing offsets of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("listing offsets of %s/%d: %w", topic, po.Partition, po.Error)
		}
		out[int32(po.Partition)] = po.LastOffset
	}
	if len(out) != partitions {
		return nil, fmt.Errorf("listing offsets of %s: %d partitions answered, want %d", topic, len(out), partitions)
	}
	return out, nil
}

// produce writes msgs to topic, keyed by stream (hash balancer), fully acknowledged.
func produce(ctx context.Context, o options, topic string, msgs []kafka.Message) (float64, error) {
	c, _ := codec(o.compression)
	w := &kafka.Writer{
		Addr:         kafka.TCP(o.brokers...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		Compression:  c,
		BatchSize:    4000,
		BatchBytes:   1_000_000, // below the broker's message.max.bytes
		BatchTimeout: 5 * time.Millisecond,
		WriteTimeout: 30 * time.Second,
	}
	began := time.Now()
	const chunk = 50_000
	for i := 0; i < len(msgs); i += chunk {
		if err := w.WriteMessages(ctx, msgs[i:min(i+chunk, len(msgs))]...); err != nil {
			w.Close()
			return 0, fmt.Errorf("producing to %s: %w", topic, err)
		}
	}
	if err := w.Close(); err != nil {
		return 0, fmt.Errorf("producing to %s: %w", topic, err)
	}
	return time.Since(began).Seconds(), nil
}

// ---------------------------------------------------------------------------
// reference: kcat

// lineCounter counts the bytes and newlines kcat writes (one value and a
// newline per message; simulated values hold no newline).
type lineCounter struct{ bytes, lines int64 }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.bytes += int64(len(p))
	c.lines += int64(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}

func kcatCommand(ctx context.Context, o options, topic string) (*exec.Cmd, error) {
	path, err := exec.LookPath(o.kcat)
	if err != nil {
		return nil, err
	}
	return exec.CommandContext(ctx, path, "-C", "-b", strings.Join(o.brokers, ","), "-t", topic, "-o", "beginning", "-e", "-q"), nil
}

// checkKcat runs kcat once through a pipe into a counter, untimed for the
// ratio, and checks that it delivers every message and byte: the timed runs
// write to /dev/null and are only checked for a clean exit at the end of
// every partition (-e). It returns the seconds this pass took.
func checkKcat(ctx context.Context, o options, topic string, msgs, valueBytes int64) (float64, error) {
	cmd, err := kcatCommand(ctx, o, topic)
	if err != nil {
		return 0, err
	}
	var count lineCounter
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &count, &stderr // os/exec copies the pipe into count
	began := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s: %v: %s", cmd, err, strings.TrimSpace(lastLines(stderr.String(), 5)))
	}
	secs := time.Since(began).Seconds()
	if count.lines != msgs || count.bytes-count.lines != valueBytes {
		return 0, fmt.Errorf("kcat delivered %d messages (%d bytes), want %d (%d bytes): %s",
			count.lines, count.bytes-count.lines, msgs, valueBytes, strings.TrimSpace(lastLines(stderr.String(), 5)))
	}
	return secs, nil
}

// timeKcat times kcat reading the whole topic from the beginning to the end of
// every partition, its output (each value and a newline) going to /dev/null.
func timeKcat(ctx context.Context, o options, topic string) (result, error) {
	cmd, err := kcatCommand(ctx, o, topic)
	if err != nil {
		return result{}, err
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return result{}, err
	}
	defer null.Close()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = null, &stderr
	s0 := snapCPU()
	began := time.Now()
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("%s: %v: %s", cmd, err, strings.TrimSpace(lastLines(stderr.String(), 5)))
	}
	secs := time.Since(began).Seconds()
	ps := cmd.ProcessState
	cpu := (ps.UserTime() + ps.SystemTime()).Seconds()
	return result{seconds: secs, cpuSeconds: cpu, load: since(s0, snapCPU(), cpu)}, nil
}

// timeKafkaGo is the fallback reference when kcat cannot run: one kafka-go
// partition reader per partition, reading to the end, nothing else.
func timeKafkaGo(ctx context.Context, o options, topic string, ends map[int32]int64) (result, error) {
	s0 := snapCPU()
	began := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(ends))
	for p, end := range ends {
		if end == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: o.brokers, Topic: topic, Partition: int(p), MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 250 * time.Millisecond, ReadLagInterval: -1})
			defer r.Close()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					errs <- err
					return
				}
				if m.Offset+1 >= end {
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return result{}, err
	}
	secs := time.Since(began).Seconds()
	s1 := snapCPU()
	cpu := s1.self - s0.self
	return result{seconds: secs, cpuSeconds: cpu, load: since(s0, s1, cpu)}, nil
}

// ---------------------------------------------------------------------------
// gapwatch

func openClickHouse(ctx context.Context, addr string) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{addr},
		Auth:        clickhouse.Auth{Database: "default", Username: envOr("GAPWATCH_CLICKHOUSE_USER", "default"), Password: os.Getenv("GAPWATCH_CLICKHOUSE_PASSWORD")},
		DialTimeout: 5 * time.Second,
		ReadTimeout: 5 * time.Minute,
	})
	if err == nil {
		err = conn.Ping(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("ClickHouse at %s is not answering (make services): %w", addr, err)
	}
	return conn, nil
}

// freshStore creates and migrates a new database; drop drops it.
func freshStore(ctx context.Context, o options) (s *chstore.Store, db string, drop func(), err error) {
	db = unique("gapwatch_bench_")
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := chstore.Config{Addr: o.chAddr, Database: db, User: os.Getenv("GAPWATCH_CLICKHOUSE_USER"), Password: os.Getenv("GAPWATCH_CLICKHOUSE_PASSWORD")}
	s, err = chstore.Open(ctx, cfg, quiet)
	if err != nil {
		return nil, "", nil, err
	}
	drop = func() {
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Exec(dctx, "DROP DATABASE IF EXISTS `"+db+"`"); err != nil {
			fmt.Fprintf(os.Stderr, "benchingest: dropping database %s: %v\n", db, err)
		}
		s.Close()
	}
	if _, err := s.Migrate(ctx); err != nil {
		drop()
		return nil, "", nil, fmt.Errorf("migrating %s: %w", db, err)
	}
	return s, db, drop, nil
}

// childEnv is the environment of the gapwatch child: ours without GAPWATCH_*
// settings (credentials aside), plus the benchmark's.
func childEnv(o options, topic, group, db string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "GAPWATCH_") && name != "GAPWATCH_CLICKHOUSE_USER" && name != "GAPWATCH_CLICKHOUSE_PASSWORD" {
			continue
		}
		env = append(env, kv)
	}
	return append(append(env,
		"GAPWATCH_KAFKA_BROKERS="+strings.Join(o.brokers, ","),
		"GAPWATCH_INPUT_TOPICS="+topic,
		"GAPWATCH_GROUP="+group,
		"GAPWATCH_STORE=clickhouse",
		"GAPWATCH_CLICKHOUSE_ADDR="+o.chAddr,
		"GAPWATCH_CLICKHOUSE_DATABASE="+db,
		"GAPWATCH_HTTP_ADDR=127.0.0.1:0",
		"GAPWATCH_LOG_LEVEL="+o.logLevel,
	), o.childEnv...)
}

// waitStored polls the stored offsets every 100 ms until they reach ends on
// every partition, and returns when the first progress was stored. exited
// reports a child that ended early.
func waitStored(ctx context.Context, o options, s *chstore.Store, topic string, ends map[int32]int64, began time.Time, exited <-chan struct{}) (firstWrite float64, err error) {
	firstWrite = -1
	var total, lastShown int64
	for _, e := range ends {
		total += e
	}
	// Every 100 ms, and every 10 ms once 90 % is stored: the run's end is
	// seen within 10 ms (kcat's is its exit), for a query per poll.
	poll := 100 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return firstWrite, fmt.Errorf("stored offsets did not reach the end of %s in time: %w", topic, ctx.Err())
		case <-exited:
			return firstWrite, errors.New("gapwatch exited before storing everything")
		case <-time.After(poll):
		}
		stored, err := s.Offsets(ctx, topic)
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			return firstWrite, err
		}
		if firstWrite < 0 && len(stored) > 0 {
			firstWrite = time.Since(began).Seconds()
		}
		var sum int64
		for _, st := range stored {
			sum += st.Next
		}
		if o.verbose && sum != lastShown {
			progress(o, "  %6.2f s: %d of %d messages stored", time.Since(began).Seconds(), sum, total)
			lastShown = sum
		}
		if 10*sum >= 9*total {
			poll = 10 * time.Millisecond
		}
		done := true
		for p, end := range ends {
			next := stored[p].Next
			if next > end {
				return firstWrite, fmt.Errorf("partition %d: stored offset %d beyond the end %d", p, next, end)
			}
			done = done && next == end
		}
		if done {
			return firstWrite, nil
		}
	}
}

// procStatus returns VmRSS and VmHWM of pid in MB.
func procStatus(pid int) (rss, hwm float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	return rss, hwm, nil
}

// procCPU returns the user + system CPU seconds pid has used.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command (in parentheses, may hold spaces): utime is the 14th field.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, nil // USER_HZ is 100 on Linux
}

func timeGapwatch(ctx context.Context, o options, ch driver.Conn, bin, tmp, topic, group string, ends map[int32]int64, w *workload, run string) (result, error) {
	s, db, drop, err := freshStore(ctx, o)
	if err != nil {
		return result{}, err
	}
	defer drop()
	logPath := filepath.Join(cmp.Or(o.logDir, tmp), "gapwatch-"+run+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return result{}, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "run", "--role", "ingest")
	cmd.Env = childEnv(o, topic, group, db)
	cmd.Dir = tmp // no stray gapwatch.yaml
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}

	s0 := snapCPU()
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	stopChild := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	tail := func() string {
		b, _ := os.ReadFile(logPath)
		return lastLines(string(b), 15)
	}

	// RSS sampler.
	var mu sync.Mutex
	var peak float64
	sampleDone := make(chan struct{})
	sampleStop := make(chan struct{})
	go func() {
		defer close(sampleDone)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, _, err := procStatus(pid); err == nil {
				mu.Lock()
				peak = max(peak, rss)
				mu.Unlock()
			}
			select {
			case <-sampleStop:
				return
			case <-t.C:
			}
		}
	}()

	firstWrite, err := waitStored(ctx, o, s, topic, ends, began, exited)
	secs := time.Since(began).Seconds()
	close(sampleStop)
	<-sampleDone
	if err != nil {
		stopChild()
		return result{}, fmt.Errorf("%w (exit: %v); log tail:\n%s", err, waitErr, tail())
	}
	_, hwm, _ := procStatus(pid)
	cpu, _ := procCPU(pid)
	s1 := snapCPU()
	stopChild()
	if waitErr != nil {
		return result{}, fmt.Errorf("gapwatch did not stop cleanly on SIGTERM: %v; log tail:\n%s", waitErr, tail())
	}
	rows, err := verify(ctx, ch, db, w)
	if err != nil {
		return result{}, fmt.Errorf("%w; log tail:\n%s", err, tail())
	}
	rc, err := timeRollup(ctx, s)
	if err != nil {
		return result{}, err
	}
	return result{seconds: secs, cpuSeconds: cpu, rssPeakMB: max(peak, hwm), firstWrite: firstWrite, load: since(s0, s1, cpu), rows: rows, rollup: rc}, nil
}

// timeRollup rolls up the stored counts as the ingest role does once their
// write day is over, and times it.
func timeRollup(ctx context.Context, s *chstore.Store) (rollupCost, error) {
	c0 := snapCPU()
	began := time.Now()
	if _, err := s.Rollup(ctx, time.Now().Add(48*time.Hour)); err != nil {
		return rollupCost{}, fmt.Errorf("rolling up the run's counts: %w", err)
	}
	return rollupCost{seconds: time.Since(began).Seconds(), chCPU: snapCPU().ch - c0.ch}, nil
}

// verify checks that db holds exactly the produced events on both clocks, for every stream.
func verify(ctx context.Context, ch driver.Conn, db string, w *workload) (rows uint64, err error) {
	var arrival, event, streams uint64
	q := "SELECT toUInt64(sumIf(events, clock = 0)), toUInt64(sumIf(events, clock = 1)), toUInt64(uniqExact(tenant, source)), toUInt64(count()) FROM `" + db + "`.counts WHERE tenant != ''"
	if err := ch.QueryRow(ctx, q).Scan(&arrival, &event, &streams, &rows); err != nil {
		return 0, fmt.Errorf("reading the stored counts: %w", err)
	}
	if arrival != uint64(w.events) || event != uint64(w.events) || streams != uint64(w.streams) {
		return rows, fmt.Errorf("NOT EXACT: stored %d events on the arrival clock, %d on the event clock, %d streams; produced %d events of %d streams",
			arrival, event, streams, w.events, w.streams)
	}
	return rows, nil
}

// profileInProcess runs the ingest role inside this process, configured exactly
// as the binary would be by the same environment, under the CPU profiler.
func profileInProcess(ctx context.Context, o options, ch driver.Conn, tmp, topic, group string, ends map[int32]int64, w *workload) (result, error) {
	s, db, drop, err := freshStore(ctx, o)
	if err != nil {
		return result{}, err
	}
	defer drop()
	env := map[string]string{}
	for _, kv := range childEnv(o, topic, group, db) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	empty := filepath.Join(tmp, "empty.yaml")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		return result{}, err
	}
	cfg, err := config.Load(empty, func(k string) string { return env[k] })
	if err != nil {
		return result{}, err
	}
	f, err := os.Create(o.cpuprofile)
	if err != nil {
		return result{}, err
	}
	defer f.Close()
	// Warnings while measuring; once measured, the store is dropped under the
	// shutting-down ingester, whose complaints are then noise.
	var level slog.LevelVar
	level.Set(slog.LevelWarn)
	defer level.Set(slog.LevelError + 100)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: &level}))
	in, err := ingest.New(cfg.Ingest, ingest.Deps{Sink: s, Log: log})
	if err != nil {
		return result{}, err
	}
	if o.mutexprof != "" {
		runtime.SetMutexProfileFraction(5)
		defer runtime.SetMutexProfileFraction(0)
	}
	stopHeap := func() error { return nil }
	if o.memprofile != "" {
		stopHeap = peakHeapProfile(o.memprofile)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return result{}, err
	}
	if o.traceOut != "" {
		tf, err := os.Create(o.traceOut)
		if err != nil {
			return result{}, err
		}
		defer tf.Close()
		if err := trace.Start(tf); err != nil {
			return result{}, err
		}
		defer trace.Stop()
	}
	s0 := snapCPU()
	began := time.Now()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var runErr error
	go func() { runErr = in.Run(rctx); close(done) }()
	_, err = waitStored(ctx, o, s, topic, ends, began, done)
	secs := time.Since(began).Seconds()
	s1 := snapCPU()
	pprof.StopCPUProfile()
	if herr := stopHeap(); herr != nil && err == nil {
		err = herr
	}
	if o.mutexprof != "" && err == nil {
		err = writeProfile("mutex", o.mutexprof)
	}
	cancel()
	<-done
	if err != nil {
		return result{}, fmt.Errorf("%w (run: %v)", err, runErr)
	}
	rows, err := verify(ctx, ch, db, w)
	if err != nil {
		return result{}, err
	}
	cpu := s1.self - s0.self // the harness's polling included
	return result{seconds: secs, cpuSeconds: cpu, load: since(s0, s1, cpu), rows: rows}, nil
}

func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// peakHeapProfile keeps, every 200 ms, the heap profile taken when the live heap
// (as of the last GC) was largest; the returned func writes it to path.
func peakHeapProfile(path string) func() error {
	stop, done := make(chan struct{}), make(chan struct{})
	var best []byte
	go func() {
		defer close(done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		var top uint64
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > top && ms.NumGC > 0 {
				top = ms.HeapAlloc
				var buf bytes.Buffer
				if pprof.Lookup("heap").WriteTo(&buf, 0) == nil {
					best = buf.Bytes()
				}
			}
		}
	}()
	return func() error {
		close(stop)
		<-done
		return os.WriteFile(path, best, 0o644)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
