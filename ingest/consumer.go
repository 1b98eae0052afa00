package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/gapwatch/gapwatch/detect/live"
	"github.com/gapwatch/gapwatch/ingest/decode"
	"github.com/gapwatch/gapwatch/ingest/fetch"
	"github.com/gapwatch/gapwatch/storage"
)

// Ingester consumes the input topics as one member of the consumer group and
// writes counts with their offsets to the sink. See docs/exactly-once.md.
type Ingester struct {
	cfg     Config
	sink    Sink
	log     *slog.Logger
	dialer  *kafka.Dialer
	dlq     DeadLetterPublisher
	streams *Streams
	metrics *Metrics
	ready   atomic.Bool

	loggedMu sync.Mutex
	commitMu sync.Mutex // the lanes' flushers commit one at a time
	logged   map[decode.Reason]bool

	dlqDown atomic.Bool // the last dead-letter publication failed (see publishDeadLetters)

	alerts    AlertPublisher
	ownAlerts bool // alerts was made by New, which closes it
	caps      *capAlerts

	meta   *kafka.Client              // describes the input topics (topics.go)
	topics atomic.Pointer[topicCheck] // the last look at them
}

// New checks cfg and returns an Ingester; Run starts it.
func New(cfg Config, deps Deps) (*Ingester, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, t := range cfg.Topics {
		if _, err := decode.New(cfg.fieldsFor(t)); err != nil {
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
	if deps.AlertsTopic == "" {
		deps.AlertsTopic = "gapwatch.alerts"
	}
	ownAlerts := deps.Alerts == nil
	if ownAlerts {
		deps.Alerts = live.NewKafka(live.KafkaConfig{Brokers: cfg.Brokers, Topic: deps.AlertsTopic, Dialer: deps.Dialer, Transport: deps.Transport})
	}
	streams := NewStreams(cfg.Limits)
	caps := newCapAlerts(cfg.Limits.MaxStreams, cfg.Limits.MaxStreamsPerTenant)
	streams.onCap = caps.observe
	return &Ingester{
		cfg: cfg, sink: deps.Sink, log: deps.Log.With("component", "ingest"), dialer: deps.Dialer, dlq: deps.DeadLetters,
		alerts: deps.Alerts, ownAlerts: ownAlerts, caps: caps,
		streams: streams, metrics: NewMetrics(deps.Registry, streams), logged: map[decode.Reason]bool{},
		meta: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: deps.Transport},
	}, nil
}

// Ready reports whether the ingester holds a live group generation.
func (in *Ingester) Ready() bool { return in.ready.Load() }

// Run consumes until ctx ends, then hands back its partitions after a final
// write. It joins the consumer group with the input topics that exist, waiting
// for one to, and joins again when they change (see topics.go).
func (in *Ingester) Run(ctx context.Context) error {
	if c, ok := in.dlq.(interface{ Close() error }); ok {
		defer c.Close() // after the final flush of the last group has published
	}
	// The cap alerts are published beside the counting, across rejoins; a
	// group that ends with an error must not leave the loop waiting.
	actx, stopAlerts := context.WithCancel(ctx)
	alertsDone := make(chan struct{})
	go func() {
		defer close(alertsDone)
		in.capAlertLoop(actx)
	}()
	defer func() { stopAlerts(); <-alertsDone }()
	for {
		parts, ok := in.awaitTopics(ctx)
		if !ok {
			return nil
		}
		if err := in.runGroup(ctx, parts); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// runGroup consumes the topics of parts (their partition counts) as a member
// of the consumer group until ctx ends or the input topics change; it returns
// after the group's final write.
func (in *Ingester) runGroup(ctx context.Context, parts map[string]int) error {
	start := kafka.FirstOffset
	if in.cfg.StartOffset == "latest" {
		start = kafka.LastOffset
	}
	topics := sortedTopics(parts)
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                in.cfg.Group,
		Brokers:           in.cfg.Brokers,
		Dialer:            in.dialer,
		Topics:            topics,
		StartOffset:       start,
		SessionTimeout:    in.cfg.SessionTimeout,
		RebalanceTimeout:  in.cfg.RebalanceTimeout,
		HeartbeatInterval: in.cfg.SessionTimeout / 5,
		JoinGroupBackoff:  time.Second,
		// Partition changes are watched by watchTopics, which never creates a
		// topic (kafka-go's watcher asks for metadata with auto-creation on).
		WatchPartitionChanges: false,
		ErrorLogger:           kafka.LoggerFunc(func(msg string, args ...any) { in.log.Debug("kafka group: " + fmt.Sprintf(msg, args...)) }),
	})
	if err != nil {
		return fmt.Errorf("joining consumer group %s: %w", in.cfg.Group, err)
	}
	gctx, rejoin := context.WithCancel(ctx)
	// Closing the group ends the current generation — its final write included —
	// and leaves the group, so the partitions move on at once. runGroup returns
	// only after that; AfterFunc only interrupts a pending Next.
	stop := context.AfterFunc(gctx, func() { group.Close() })
	defer stop()
	defer group.Close()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		in.watchTopics(gctx, parts, rejoin)
	}()
	defer func() { rejoin(); <-watched }()
	in.log.Info("joining consumer group", "group", in.cfg.Group, "topics", topics, "brokers", in.cfg.Brokers)
	for {
		gen, err := group.Next(gctx)
		if err != nil {
			if gctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return nil
			}
			in.log.Warn("consumer group: waiting for a generation", "err", err)
			select {
			case <-gctx.Done():
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
	decoder   *decode.Decoder
	staged    Staged
	rec       fetch.Record
	msg       Message
	emit      func(decode.Event)
	reject    func(decode.Reason, string)
}

func (in *Ingester) consume(ctx context.Context, counter *Counter, topic string, partition int32, offset int64) {
	dec, err := decode.New(in.cfg.fieldsFor(topic))
	if err != nil { // checked in New
		panic(err)
	}
	lost := in.metrics.lostRecords.WithLabelValues(topic)
	aborted := in.metrics.abortedRecords.WithLabelValues(topic)
	r, err := fetch.NewReader(fetch.Config{
		Brokers: in.cfg.Brokers, Topic: topic, Partition: partition, Dialer: in.dialer,
		MaxBytes: in.cfg.FetchMaxBytes, MaxWait: in.cfg.FetchMaxWait, Log: in.log,
		OnLost:    func(from, to int64) { lost.Add(float64(to - from)) },
		OnAborted: func(n int64) { aborted.Add(float64(n)) },
	}, offset)
	if err != nil { // the config was checked in New
		panic(err)
	}
	defer r.Close()
	in.log.Debug("consuming partition", "topic", topic, "partition", partition, "offset", offset)
	ps := &partitionState{in: in, topic: topic, partition: partition, decoder: dec}
	ps.emit = ps.onEvent
	ps.reject = ps.onReject
	lastRecord := time.Now()
	for {
		asked := time.Now() // before the fetch: see below
		resp, err := r.Fetch(ctx)
		if err != nil {
			return // ctx ended
		}
		n, err := in.apply(resp, ps, counter)
		lag, ok := r.Done(ctx, resp)
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
		} else if ok && r.CaughtUp() && now.Sub(lastRecord) >= in.cfg.IdleAfter {
			// Idle and caught up: nothing was readable when the fetch was
			// answered, so whatever becomes readable later became so after
			// it was asked. The watermark follows ingest's clock as it was
			// then, less idle_margin for the records' clock and their way to
			// being readable, at every empty fetch (each fetch_max_wait). A
			// partition with a transaction still open is not caught up: its
			// records come at the commit with their older timestamps.
			counter.Idle(topic, partition, r.Offset(), asked.Add(-in.cfg.IdleMargin))
		}
	}
}

// apply decodes and counts the records of a fetch response, returning how
// many it read; it stops early only when the counter is closed.
func (in *Ingester) apply(resp *fetch.Response, ps *partitionState, counter *Counter) (int, error) {
	n := 0
	m := &ps.rec
	for resp.Next(m) {
		n++
		ps.msg = Message{Topic: ps.topic, Partition: ps.partition, Offset: m.Offset, Arrival: m.Time, Key: m.Key, Value: m.Value}
		if m.Time.IsZero() {
			ps.msg.Arrival = time.Now() // a record without timestamp arrives now
		}
		ps.staged.Reset()
		ps.decoder.DecodeAt(m.Value, ps.msg.Arrival, ps.emit, ps.reject)
		refused, err := counter.Apply(&ps.msg, &ps.staged)
		if err != nil {
			return n, err
		}
		if refused > 0 {
			in.rejected(ReasonStreamLimit, refused, fmt.Sprintf("%d events of new streams over the caps (%d streams, %d per tenant)", refused, in.cfg.Limits.MaxStreams, in.cfg.Limits.MaxStreamsPerTenant), ps.topic, ps.partition, m.Offset)
		}
	}
	return n, nil // the end of the response, or its error (see fetch.Reader.Done)
}

func (ps *partitionState) onEvent(ev decode.Event) {
	cfg := &ps.in.cfg
	if arrival := ps.msg.Arrival; ev.Time.After(arrival.Add(cfg.MaxFuture)) || ev.Time.Before(arrival.Add(-cfg.MaxLateness)) {
		ps.onReject(ReasonTimeOutOfRange, "event time "+ev.Time.Format(time.RFC3339)+" vs arrival "+arrival.UTC().Format(time.RFC3339))
		return
	}
	ps.staged.Add(ev)
}

func (ps *partitionState) onReject(reason decode.Reason, detail string) {
	ps.staged.Reject(reason, detail)
	ps.in.rejected(reason, 1, detail, ps.topic, ps.partition, ps.msg.Offset)
}

// rejected counts n rejections and logs the first of each reason.
func (in *Ingester) rejected(reason decode.Reason, n int, detail, topic string, partition int32, offset int64) {
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
