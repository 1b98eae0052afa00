package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/gapwatch/gapwatch/internal/failpoint"
	"github.com/gapwatch/gapwatch/storage"
)

// Sink is where ingest stores its batches: the ClickHouse store in production,
// the in-memory store in the demo.
type Sink interface {
	// Write stores the batch's counts and offsets atomically: all of it or none.
	// An error may still mean it was stored (a timeout after the server committed);
	// ingest tells the two apart by reading Offsets back. Each lane's flusher
	// writes its own batches (of its own partitions), concurrently with the others.
	Write(ctx context.Context, b storage.Batch) error
	// Offsets returns the stored progress of every partition of topic.
	Offsets(ctx context.Context, topic string) (map[int32]storage.Offset, error)
}

// Config is the ingest role's configuration. Zero values take the documented defaults.
type Config struct {
	Brokers       []string               `yaml:"brokers"`        // default 127.0.0.1:9092
	Topics        []string               `yaml:"topics"`         // raw log topics; default logs
	Group         string                 `yaml:"group"`          // consumer group; default gapwatch-ingest
	Bucket        time.Duration          `yaml:"bucket"`         // count bucket width; default 1m
	FlushInterval time.Duration          `yaml:"flush_interval"` // how often counts are written; default 1s
	Fields        FieldConfig            `yaml:"fields"`         // field resolution for every topic
	TopicFields   map[string]FieldConfig `yaml:"topic_fields"`   // per-topic field resolution, replacing Fields
	Limits        Limits                 `yaml:"limits"`
	MaxFuture     time.Duration          `yaml:"max_future"`      // events stamped further ahead of their arrival are rejected; default 1h
	MaxLateness   time.Duration          `yaml:"max_lateness"`    // events older than this at arrival are rejected; default 168h
	StartOffset   string                 `yaml:"start_offset"`    // where a partition with no stored or committed progress starts: earliest (default) or latest
	FetchMaxBytes int                    `yaml:"fetch_max_bytes"` // per partition fetch; default 8 MiB
	FetchMaxWait  time.Duration          `yaml:"fetch_max_wait"`  // default 250ms
	WriteTimeout  time.Duration          `yaml:"write_timeout"`   // one store write; default 20s; twice it must stay below the rebalance timeout
	// RebalanceTimeout bounds how long a member may take to hand its partitions over
	// (final write included); default 60s.
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout"`
	SessionTimeout   time.Duration `yaml:"session_timeout"` // default 10s
	// IdleAfter is how long a partition may deliver nothing before ingest checks
	// whether it is caught up; a caught-up partition's arrival watermark then
	// advances to the wall clock, so an idle partition does not hold detection
	// back. Default 5s.
	IdleAfter time.Duration `yaml:"idle_after"`
}

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if len(c.Brokers) == 0 {
		c.Brokers = []string{"127.0.0.1:9092"}
	}
	if len(c.Topics) == 0 {
		c.Topics = []string{"logs"}
	}
	if c.Group == "" {
		c.Group = "gapwatch-ingest"
	}
	if c.Bucket == 0 {
		c.Bucket = time.Minute
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = time.Second
	}
	c.Fields = c.Fields.WithDefaults()
	for t, f := range c.TopicFields {
		c.TopicFields[t] = f.WithDefaults()
	}
	c.Limits = c.Limits.WithDefaults()
	if c.MaxFuture == 0 {
		c.MaxFuture = time.Hour
	}
	if c.MaxLateness == 0 {
		c.MaxLateness = 7 * 24 * time.Hour
	}
	if c.StartOffset == "" {
		c.StartOffset = "earliest"
	}
	if c.FetchMaxBytes == 0 {
		c.FetchMaxBytes = 8 << 20
	}
	if c.FetchMaxWait == 0 {
		c.FetchMaxWait = 250 * time.Millisecond
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 20 * time.Second
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = 60 * time.Second
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.IdleAfter == 0 {
		c.IdleAfter = 5 * time.Second
	}
	return c
}

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	switch {
	case len(c.Brokers) == 0 || c.Brokers[0] == "":
		return errors.New("ingest: no Kafka brokers")
	case len(c.Topics) == 0:
		return errors.New("ingest: no input topics")
	case c.Group == "":
		return errors.New("ingest: empty consumer group")
	case c.Bucket < time.Second || c.Bucket%time.Second != 0 || (24*time.Hour)%c.Bucket != 0:
		return fmt.Errorf("ingest: bucket %s must be whole seconds and divide a day", c.Bucket)
	case c.FlushInterval < 10*time.Millisecond:
		return fmt.Errorf("ingest: flush_interval %s too short", c.FlushInterval)
	case c.IdleAfter < c.FetchMaxWait:
		return fmt.Errorf("ingest: idle_after %s must be at least fetch_max_wait %s", c.IdleAfter, c.FetchMaxWait)
	case c.StartOffset != "earliest" && c.StartOffset != "latest":
		return fmt.Errorf("ingest: start_offset %q: want earliest or latest", c.StartOffset)
	case 2*c.WriteTimeout >= c.RebalanceTimeout:
		return fmt.Errorf("ingest: twice write_timeout %s must be below rebalance_timeout %s, or a slow final write could overlap the next owner", c.WriteTimeout, c.RebalanceTimeout)
	case c.Limits.MaxStreams < 1 || c.Limits.MaxStreamsPerTenant < 1 || c.Limits.MaxPendingCells < 2:
		return errors.New("ingest: limits must be positive")
	}
	if err := c.Fields.Validate(); err != nil {
		return err
	}
	for t, f := range c.TopicFields {
		if err := f.Validate(); err != nil {
			return fmt.Errorf("topic %s: %w", t, err)
		}
	}
	return nil
}

func (c Config) fieldsFor(topic string) FieldConfig {
	if f, ok := c.TopicFields[topic]; ok {
		return f
	}
	return c.Fields
}

// Deps are what an Ingester works with.
type Deps struct {
	Sink     Sink
	Registry prometheus.Registerer
	Log      *slog.Logger
	// Dialer connects to Kafka (consumer group, fetches); nil means kafka-go's default dialer.
	Dialer *kafka.Dialer
	// Transport carries the dead letters and offset lookups; nil: one with the Dialer's TLS and SASL.
	Transport kafka.RoundTripper
	// DeadLetters receives what could not be counted; nil means <topic>.dlq on the input cluster.
	DeadLetters DeadLetterPublisher
}

// Ingester consumes the input topics as one member of the consumer group and
// writes counts with their offsets to the sink. See docs/exactly-once.md.
type Ingester struct {
	cfg    Config
	sink   Sink
	log    *slog.Logger
	dialer *kafka.Dialer
	// fetchDialer is dialer with a large read buffer, for the partition fetches.
	fetchDialer *kafka.Dialer
	dlq         DeadLetterPublisher
	streams     *Streams
	metrics     *Metrics
	ready       atomic.Bool

	loggedMu sync.Mutex
	commitMu sync.Mutex // the lanes' flushers commit one at a time
	logged   map[Reason]bool

	transport kafka.RoundTripper // dead letters, offset lookups: the dialer's TLS and SASL
	dlqDown   atomic.Bool        // the last dead-letter publication failed (see publishDeadLetters)
}

// New checks cfg and returns an Ingester; Run starts it.
func New(cfg Config, deps Deps) (*Ingester, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, t := range cfg.Topics {
		if _, err := NewDecoder(cfg.fieldsFor(t)); err != nil {
			return nil, fmt.Errorf("topic %s: %w", t, err)
		}
	}
	if deps.Sink == nil {
		return nil, errors.New("ingest: no sink")
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	if deps.Dialer == nil {
		deps.Dialer = kafka.DefaultDialer
	}
	if deps.Transport == nil {
		d := deps.Dialer
		deps.Transport = &kafka.Transport{Dial: d.DialFunc, TLS: d.TLS, SASL: d.SASLMechanism, ClientID: d.ClientID}
	}
	if deps.DeadLetters == nil {
		deps.DeadLetters = NewKafkaDeadLetters(cfg.Brokers, deps.Transport)
	}
	streams := NewStreams(cfg.Limits)
	return &Ingester{
		cfg: cfg, sink: deps.Sink, log: deps.Log.With("component", "ingest"), dialer: deps.Dialer, fetchDialer: bufferedDialer(deps.Dialer), dlq: deps.DeadLetters,
		streams: streams, metrics: NewMetrics(deps.Registry, streams), logged: map[Reason]bool{}, transport: deps.Transport,
	}, nil
}

// Ready reports whether the ingester holds a live group generation.
func (in *Ingester) Ready() bool { return in.ready.Load() }

// Run consumes until ctx ends, then hands back its partitions after a final write.
func (in *Ingester) Run(ctx context.Context) error {
	start := kafka.FirstOffset
	if in.cfg.StartOffset == "latest" {
		start = kafka.LastOffset
	}
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                    in.cfg.Group,
		Brokers:               in.cfg.Brokers,
		Dialer:                in.dialer,
		Topics:                in.cfg.Topics,
		StartOffset:           start,
		SessionTimeout:        in.cfg.SessionTimeout,
		RebalanceTimeout:      in.cfg.RebalanceTimeout,
		HeartbeatInterval:     in.cfg.SessionTimeout / 5,
		JoinGroupBackoff:      time.Second,
		WatchPartitionChanges: true,
		ErrorLogger:           kafka.LoggerFunc(func(msg string, args ...any) { in.log.Debug("kafka group: " + fmt.Sprintf(msg, args...)) }),
	})
	if err != nil {
		return fmt.Errorf("joining consumer group %s: %w", in.cfg.Group, err)
	}
	if c, ok := in.dlq.(interface{ Close() error }); ok {
		defer c.Close() // after the final flush below has published
	}
	// Closing the group ends the current generation — its final write included —
	// and leaves the group, so the partitions move on at once. Run returns only
	// after that; AfterFunc only interrupts a pending Next.
	stop := context.AfterFunc(ctx, func() { group.Close() })
	defer stop()
	defer group.Close()
	in.log.Info("joining consumer group", "group", in.cfg.Group, "topics", in.cfg.Topics, "brokers", in.cfg.Brokers)
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return nil
			}
			in.log.Warn("consumer group: waiting for a generation", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		in.runGeneration(gen)
	}
}

// runGeneration consumes the generation's partitions until it ends. One
// goroutine per partition decodes and applies to a counter; one flusher writes
// the counter to the sink and then commits. All are started with gen.Start, so
// the group does not rejoin (and hand the partitions to another member) before
// the final write has finished; and since any of them returning ends the
// generation, none returns early.
func (in *Ingester) runGeneration(gen *kafka.Generation) {
	gen.Start(func(ctx context.Context) {
		in.log.Info("generation started", "generation", gen.ID, "assignments", describe(gen.Assignments))
		counter := NewCounter(in.cfg.Bucket, in.streams, in.cfg.Limits)
		var readers sync.WaitGroup
		assigned := 0
		for topic, parts := range gen.Assignments {
			if len(parts) == 0 {
				continue
			}
			stored, err := in.storedOffsets(ctx, topic)
			if err != nil {
				return // generation ended while the store was unreachable
			}
			for _, pa := range parts {
				offset := pa.Offset
				if o, ok := stored[int32(pa.ID)]; ok {
					offset = o.Next
				}
				assigned++
				readers.Add(1)
				topic, partition := topic, int32(pa.ID)
				gen.Start(func(ctx context.Context) {
					defer readers.Done()
					in.consume(ctx, counter, topic, partition, offset)
				})
			}
		}
		in.metrics.partitions.Set(float64(assigned))
		in.ready.Store(true)
		var flushers sync.WaitGroup
		for lane := 1; lane < counter.Lanes(); lane++ {
			flushers.Add(1)
			gen.Start(func(ctx context.Context) {
				defer flushers.Done()
				in.flushLoop(ctx, gen, counter, lane, &readers)
			})
		}
		in.flushLoop(ctx, gen, counter, 0, &readers)
		flushers.Wait()
		in.ready.Store(false)
		in.metrics.partitions.Set(0)
	})
}

func describe(a map[string][]kafka.PartitionAssignment) map[string][]int {
	out := map[string][]int{}
	for t, ps := range a {
		for _, p := range ps {
			out[t] = append(out[t], p.ID)
		}
	}
	return out
}

// storedOffsets reads the store's progress for topic, retrying while the store is
// down: consuming without it could count records twice.
func (in *Ingester) storedOffsets(ctx context.Context, topic string) (map[int32]storage.Offset, error) {
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		stored, err := in.sink.Offsets(ctx, topic)
		if err == nil {
			return stored, nil
		}
		in.log.Warn("reading stored offsets failed; retrying", "topic", topic, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// partitionState is one partition goroutine's reusable scratch.
type partitionState struct {
	in        *Ingester
	topic     string
	partition int32
	decoder   *Decoder
	staged    Staged
	rec       record
	msg       Message
	emit      func(Event)
	reject    func(Reason, string)
}

func (in *Ingester) consume(ctx context.Context, counter *Counter, topic string, partition int32, offset int64) {
	dec, err := NewDecoder(in.cfg.fieldsFor(topic))
	if err != nil { // checked in New
		panic(err)
	}
	offset, err = in.absoluteOffset(ctx, topic, partition, offset)
	if err != nil {
		if ctx.Err() == nil {
			in.log.Error("resolving start offset", "topic", topic, "partition", partition, "err", err)
		}
		return
	}
	in.log.Debug("consuming partition", "topic", topic, "partition", partition, "offset", offset)
	ps := &partitionState{in: in, topic: topic, partition: partition, decoder: dec}
	ps.emit = ps.onEvent
	ps.reject = ps.onReject
	f := &fetcher{in: in, topic: topic, partition: partition, next: offset}
	defer f.close()
	lastRecord := time.Now()
	for {
		resp, err := f.fetch(ctx)
		if err != nil {
			return // ctx ended
		}
		n, err := in.apply(resp, ps, counter)
		lag, ok := f.done(ctx, resp)
		if err != nil {
			return // closed: the generation is ending
		}
		if ok {
			counter.SetLag(topic, partition, lag)
		}
		now := time.Now()
		if n > 0 {
			lastRecord = now
			in.metrics.messages.Add(float64(n))
		} else if ok && lag == 0 && now.Sub(lastRecord) >= in.cfg.IdleAfter {
			// Idle and caught up: the watermark follows the clock at every
			// empty fetch (each fetch_max_wait), so a quiet partition holds
			// detection back by well under a second, not by idle_after.
			counter.Idle(topic, partition, f.next, now)
		}
	}
}

// apply decodes and counts the records of a fetch response, returning how
// many it read; it stops early only when the counter is closed.
func (in *Ingester) apply(resp *fetchResponse, ps *partitionState, counter *Counter) (int, error) {
	n := 0
	m := &ps.rec
	for resp.read(m) {
		n++
		ps.msg = Message{Topic: ps.topic, Partition: ps.partition, Offset: m.Offset, Arrival: m.Time, Key: m.Key, Value: m.Value}
		if m.Time.IsZero() {
			ps.msg.Arrival = time.Now() // a record without timestamp arrives now
		}
		ps.staged.Reset()
		ps.decoder.Decode(m.Value, ps.emit, ps.reject)
		refused, err := counter.Apply(&ps.msg, &ps.staged)
		if err != nil {
			return n, err
		}
		if refused > 0 {
			in.rejected(ReasonStreamLimit, refused, fmt.Sprintf("%d events of new streams over the caps (%d streams, %d per tenant)", refused, in.cfg.Limits.MaxStreams, in.cfg.Limits.MaxStreamsPerTenant), ps.topic, ps.partition, m.Offset)
		}
	}
	return n, nil // the end of the response, or its error (see fetcher.done)
}

// absoluteOffset turns kafka.FirstOffset/LastOffset into the partition's actual
// first or end offset, so that progress can be stored before any record arrives.
func (in *Ingester) absoluteOffset(ctx context.Context, topic string, partition int32, offset int64) (int64, error) {
	if offset >= 0 {
		return offset, nil
	}
	req := kafka.FirstOffsetOf(int(partition))
	if offset == kafka.LastOffset {
		req = kafka.LastOffsetOf(int(partition))
	}
	client := &kafka.Client{Addr: kafka.TCP(in.cfg.Brokers...), Transport: in.transport}
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {req}}})
		if err == nil && len(resp.Topics[topic]) == 1 && resp.Topics[topic][0].Error == nil {
			po := resp.Topics[topic][0]
			if offset == kafka.LastOffset {
				return po.LastOffset, nil
			}
			return po.FirstOffset, nil
		}
		if err == nil && len(resp.Topics[topic]) == 1 {
			err = resp.Topics[topic][0].Error
		}
		in.log.Debug("resolving start offset failed; retrying", "topic", topic, "partition", partition, "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (ps *partitionState) onEvent(ev Event) {
	cfg := &ps.in.cfg
	if arrival := ps.msg.Arrival; ev.Time.After(arrival.Add(cfg.MaxFuture)) || ev.Time.Before(arrival.Add(-cfg.MaxLateness)) {
		ps.onReject(ReasonTimeOutOfRange, "event time "+ev.Time.Format(time.RFC3339)+" vs arrival "+arrival.UTC().Format(time.RFC3339))
		return
	}
	ps.staged.Add(ev)
}

func (ps *partitionState) onReject(reason Reason, detail string) {
	ps.staged.Reject(reason, detail)
	ps.in.rejected(reason, 1, detail, ps.topic, ps.partition, ps.msg.Offset)
}

// rejected counts n rejections and logs the first of each reason.
func (in *Ingester) rejected(reason Reason, n int, detail, topic string, partition int32, offset int64) {
	in.metrics.rejected.WithLabelValues(string(reason)).Add(float64(n))
	in.loggedMu.Lock()
	first := !in.logged[reason]
	in.logged[reason] = true
	in.loggedMu.Unlock()
	if first {
		in.log.Warn("rejecting input (logged once per reason; see gapwatch_ingest_rejected_total)",
			"reason", reason, "detail", detail, "topic", topic, "partition", partition, "offset", offset)
	}
}

// flushLoop writes the counter every FlushInterval and, once the generation
// ends and every partition goroutine has stopped, writes what is left. Each
// flush publishes the dead letters first, then stores counts with offsets, then
// commits: nothing is passed over before it is durable somewhere.
func (in *Ingester) flushLoop(ctx context.Context, gen *kafka.Generation, counter *Counter, lane int, readers *sync.WaitGroup) {
	t := time.NewTicker(in.cfg.FlushInterval)
	defer t.Stop()
	var p pending
	waited := 0 // ticks since the last flush
	for {
		select {
		case <-ctx.Done():
			counter.Close()
			readers.Wait()
			final, cancel := context.WithTimeout(context.Background(), 2*in.cfg.WriteTimeout)
			defer cancel()
			p.add(counter.TakeLane(lane))
			for err := in.flush(final, &p); err != nil; err = in.flush(final, &p) {
				select {
				case <-final.Done():
					in.log.Warn("final write failed; the next owner of these partitions resumes from the stored offsets",
						"counts", len(p.inflight.Counts)+len(p.batch.Counts), "err", err)
					return
				case <-time.After(200 * time.Millisecond): // e.g. a dead-letter topic being created
				}
			}
			in.commit(gen, p.committed)
			if lane == 0 {
				in.log.Info("generation ended", "generation", gen.ID)
			}
			return
		case <-t.C:
		case <-counter.CaughtUp(lane):
			waited = catchUpFlushes // store the end of a backlog now
		case <-counter.Full(lane):
			waited = catchUpFlushes
		}
		// Catching up on a backlog, counts merge over longer: fewer, larger
		// writes (a stream's bucket is written once, not split over many
		// flushes), until catchUpFlushes intervals or an eighth of the pending cap
		// (larger batches cost more memory than they save writes).
		if waited++; waited < catchUpFlushes && counter.CatchingUp() && counter.PendingLane(lane) < in.cfg.Limits.MaxPendingCells/counter.Lanes()/8 {
			continue
		}
		waited = 0
		// While a write fails, retry what is held and take nothing more: the
		// counter fills to its cap and the partition goroutines wait
		// (backpressure), instead of the held batch growing with the input
		// for as long as the store is down.
		if p.empty() {
			p.add(counter.TakeLane(lane))
		}
		in.metrics.pending.Set(float64(counter.Pending()))
		if err := in.flush(context.Background(), &p); err != nil { // not ctx: see flush
			in.log.Warn("flush failed; retrying with the next one", "counts", len(p.inflight.Counts)+len(p.batch.Counts), "dead_letters", len(p.dead), "err", err)
			continue
		}
		in.commit(gen, p.committed)
	}
}

// catchUpFlushes is how many flush intervals counts may wait while ingest
// catches up on a backlog (Counter.CatchingUp). Detection is not delayed by
// it: a backlog is judged when ingest has caught up with it.
const catchUpFlushes = 5

// pending is what a flusher has taken from the counter and not yet stored.
type pending struct {
	// inflight is a batch whose write failed: it may nevertheless have landed
	// (a timeout after the server committed). It is never merged with newer
	// counts, so that the stored offsets can tell whether it landed.
	inflight  storage.Batch
	batch     storage.Batch // taken since, not yet tried
	dead      []DeadLetter
	committed storage.Batch // the offsets last stored, for the Kafka commit

	deadFailing time.Time // when publishing dead (still unpublished) first failed
}

// empty reports whether p holds nothing to write (as flush sees it: a batch
// with counts always has offsets).
func (p *pending) empty() bool {
	return len(p.dead) == 0 && len(p.inflight.Offsets) == 0 && len(p.batch.Offsets) == 0
}

func (p *pending) add(b storage.Batch, dead []DeadLetter) {
	p.batch = merge(p.batch, b)
	p.dead = append(p.dead, dead...)
}

// flush publishes p's dead letters, settles an in-flight batch, then stores the
// new batch, each step within WriteTimeout and ctx. ctx must not be the
// generation's: a generation ending must not cut a write in half and leave its
// outcome unknown. On success p holds nothing to write.
func (in *Ingester) flush(ctx context.Context, p *pending) error {
	if len(p.dead) > 0 {
		if err := in.publishDeadLetters(ctx, p); err != nil {
			return err
		}
	}
	if len(p.inflight.Offsets) > 0 {
		landed, err := in.landed(ctx, p.inflight)
		if err != nil {
			return fmt.Errorf("checking whether the last failed write landed: %w", err)
		}
		if landed {
			in.log.Info("a write that reported an error did land; not repeating it", "counts", len(p.inflight.Counts))
		} else if err := in.write(ctx, p.inflight); err != nil {
			return err
		}
		in.stored(p.inflight)
		p.committed, p.inflight = p.inflight, storage.Batch{}
	}
	if len(p.batch.Offsets) == 0 {
		return nil
	}
	failpoint.Hit(failBeforeWrite)
	if err := in.write(ctx, p.batch); err != nil {
		p.inflight, p.batch = p.batch, storage.Batch{}
		return err
	}
	failpoint.Hit(failAfterWrite)
	in.stored(p.batch)
	p.committed, p.batch = p.batch, storage.Batch{}
	return nil
}

// publishDeadLetters publishes p's dead letters. A failure is retried with the
// next flushes (a new dead-letter topic takes a moment to be created) for up to
// dlqGiveUpWrites write timeouts; then the topic is taken as down and the
// letters are dropped: counting must not wait for it. The rejections are
// counted anyway (gapwatch_ingest_rejected_total); dropped letters are counted
// (gapwatch_ingest_dead_letters_dropped_total) and the outage logged once.
// While the topic is down each try is short (dlqRetryTimeout) and its letters
// are dropped on the first failure, so that flushes keep their pace.
func (in *Ingester) publishDeadLetters(ctx context.Context, p *pending) error {
	down := in.dlqDown.Load()
	timeout := in.cfg.WriteTimeout
	if down {
		timeout = min(timeout, dlqRetryTimeout)
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	err := in.dlq.Publish(wctx, p.dead)
	cancel()
	if err == nil {
		in.metrics.deadLetters.Add(float64(len(p.dead)))
		p.dead, p.deadFailing = nil, time.Time{}
		if in.dlqDown.Swap(false) {
			in.log.Info("dead-letter topic works again")
		}
		return nil
	}
	in.metrics.dlqErrors.Inc()
	if p.deadFailing.IsZero() {
		p.deadFailing = time.Now()
	}
	if !down && time.Since(p.deadFailing) < dlqGiveUpWrites*in.cfg.WriteTimeout {
		return fmt.Errorf("publishing dead letters: %w", err)
	}
	in.metrics.deadLettersDropped.Add(float64(len(p.dead)))
	if !in.dlqDown.Swap(true) {
		in.log.Error("dead-letter topic unusable: dead letters are dropped (and counted) until it works again; counting goes on",
			"dropped", len(p.dead), "failing_for", time.Since(p.deadFailing).Round(time.Second), "err", err)
	}
	p.dead, p.deadFailing = nil, time.Time{}
	return nil
}

const (
	// dlqGiveUpWrites is how many write timeouts dead letters are retried
	// before the dead-letter topic is taken as down.
	dlqGiveUpWrites = 3
	// dlqRetryTimeout bounds a dead-letter publication while the topic is down.
	dlqRetryTimeout = 2 * time.Second
)

// write stores b once, within WriteTimeout.
func (in *Ingester) write(ctx context.Context, b storage.Batch) error {
	ctx, cancel := context.WithTimeout(ctx, in.cfg.WriteTimeout)
	defer cancel()
	began := time.Now()
	if err := in.sink.Write(ctx, b); err != nil {
		in.metrics.flushErrors.Inc()
		return err
	}
	took := time.Since(began)
	in.metrics.flushSeconds.Observe(took.Seconds())
	in.metrics.flushRows.Observe(float64(len(b.Counts) + len(b.Offsets)))
	in.log.Debug("stored counts", "rows", len(b.Counts)+len(b.Offsets), "events", b.Events(), "took", took.Round(time.Millisecond))
	return nil
}

// stored accounts for a batch now durably stored.
func (in *Ingester) stored(b storage.Batch) {
	in.metrics.flushes.Inc()
	in.metrics.eventsStored.Add(float64(b.Events()))
	for _, o := range b.Offsets {
		part := strconv.Itoa(int(o.Partition))
		in.metrics.storedOffsets.WithLabelValues(o.Topic, part).Set(float64(o.Next))
		if !o.ArrivalHW.IsZero() {
			in.metrics.watermark.WithLabelValues(o.Topic, part).Set(float64(o.ArrivalHW.Unix()))
		}
	}
}

// landed reports whether b is stored: the write is atomic, so b landed if and
// only if the stored progress of every partition in it has reached b's (a batch
// with counts always advances at least one partition past what was stored).
func (in *Ingester) landed(ctx context.Context, b storage.Batch) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, in.cfg.WriteTimeout)
	defer cancel()
	byTopic := map[string]map[int32]storage.Offset{}
	for _, o := range b.Offsets {
		stored, ok := byTopic[o.Topic]
		if !ok {
			var err error
			if stored, err = in.sink.Offsets(ctx, o.Topic); err != nil {
				return false, err
			}
			byTopic[o.Topic] = stored
		}
		if stored[o.Partition].Next < o.Next {
			return false, nil
		}
	}
	return true, nil
}

// commit records the stored progress in Kafka too, for lag monitoring and as
// the fallback when the store has no progress for a partition.
func (in *Ingester) commit(gen *kafka.Generation, b storage.Batch) {
	if len(b.Offsets) == 0 {
		return
	}
	offsets := map[string]map[int]int64{}
	for _, o := range b.Offsets {
		if offsets[o.Topic] == nil {
			offsets[o.Topic] = map[int]int64{}
		}
		offsets[o.Topic][int(o.Partition)] = o.Next
	}
	in.commitMu.Lock()
	err := gen.CommitOffsets(offsets)
	in.commitMu.Unlock()
	if err != nil {
		in.metrics.commitErrors.Inc()
		in.log.Debug("committing offsets to Kafka failed (progress is in the store)", "err", err)
	}
}

// merge combines a batch that failed to write with newer counts from the same
// partitions: counts add up, each partition keeps its furthest offset.
func merge(old, newer storage.Batch) storage.Batch {
	if len(old.Offsets) == 0 && len(old.Counts) == 0 {
		return newer
	}
	old.Counts = append(old.Counts, newer.Counts...)
	for _, n := range newer.Offsets {
		found := false
		for i, o := range old.Offsets {
			if o.Topic == n.Topic && o.Partition == n.Partition {
				old.Offsets[i] = n
				found = true
			}
		}
		if !found {
			old.Offsets = append(old.Offsets, n)
		}
	}
	return old
}
