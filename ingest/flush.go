package ingest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gapwatch/gapwatch/internal/failpoint"
	"github.com/gapwatch/gapwatch/storage"
)

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
// next flushes (a new dead-letter topic takes a moment to be created) under
// the side topics' policy (sideGivesUp); then the letters are dropped:
// counting must not wait for the topic. The rejections are counted anyway
// (gapwatch_ingest_rejected_total); dropped letters are counted
// (gapwatch_ingest_dead_letters_dropped_total) and the outage logged once.
func (in *Ingester) publishDeadLetters(ctx context.Context, p *pending) error {
	down := in.dlqDown.Load()
	wctx, cancel := context.WithTimeout(ctx, in.sideTimeout(down))
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
	if !in.sideGivesUp(&p.deadFailing, down) {
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

// The side topics — dead letters and stream cap alerts, which counting never
// waits for — share one failure policy: a failed publication is retried for up
// to sideGiveUpWrites write timeouts, then the topic is taken as down and what
// failed is dropped (counted, the outage logged once); while it is down each
// try is short (sideRetryTimeout) and what fails is dropped at once.
const (
	sideGiveUpWrites = 3
	sideRetryTimeout = 2 * time.Second
)

// sideTimeout bounds one publication to a side topic, down or not.
func (in *Ingester) sideTimeout(down bool) time.Duration {
	if down {
		return min(in.cfg.WriteTimeout, sideRetryTimeout)
	}
	return in.cfg.WriteTimeout
}

// sideGivesUp notes a failed publication to a side topic (*failing: when its
// failures began) and reports whether what failed is dropped now.
func (in *Ingester) sideGivesUp(failing *time.Time, down bool) bool {
	if failing.IsZero() {
		*failing = time.Now()
	}
	return down || time.Since(*failing) >= sideGiveUpWrites*in.cfg.WriteTimeout
}

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
