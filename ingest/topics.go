package ingest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// The consumer group is joined with the input topics that exist, and every
// TopicWatchInterval ingest asks Kafka again which exist and with how many
// partitions. When that changes — a topic created after ingest started,
// partitions added, a topic deleted — the group is left (after the final
// write of the current generation) and joined again with what exists now, so
// the new partitions are consumed within about one interval and a rebalance.
//
// Topics are described with Metadata requests that never create a topic: a
// consumer group that subscribed to a topic before it existed would otherwise
// have it auto-created (where the brokers allow that) with the cluster's
// default partition count, before its operator could create it as planned.

// topicCheck is the outcome of the last look at the input topics, for Readiness.
type topicCheck struct {
	missing []string // configured input topics that do not exist
	err     error    // the look failed
}

// describeTopics returns the partition count of every input topic that
// exists. A topic-level error other than "unknown topic" (e.g. no leader yet
// just after creation, or no authorization) fails the look.
func (in *Ingester) describeTopics(ctx context.Context) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	md, err := in.meta.Metadata(ctx, &kafka.MetadataRequest{Topics: in.cfg.Topics})
	if err != nil {
		return nil, fmt.Errorf("describing the input topics: %w", err)
	}
	out := map[string]int{}
	for _, t := range md.Topics {
		switch {
		case errors.Is(t.Error, kafka.UnknownTopicOrPartition):
		case t.Error != nil:
			return nil, fmt.Errorf("describing input topic %s: %w", t.Name, t.Error)
		case len(t.Partitions) > 0:
			out[t.Name] = len(t.Partitions)
		}
	}
	return out, nil
}

// checkTopics describes the input topics, records the outcome for Readiness
// and logs what changed since the last check.
func (in *Ingester) checkTopics(ctx context.Context) (map[string]int, error) {
	parts, err := in.describeTopics(ctx)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var now topicCheck
	if err != nil {
		now.err = err
	} else {
		for _, t := range in.cfg.Topics {
			if _, ok := parts[t]; !ok {
				now.missing = append(now.missing, t)
			}
		}
	}
	was := in.topics.Swap(&now)
	switch {
	case err != nil && (was == nil || was.err == nil):
		in.log.Warn("cannot describe the input topics; retrying", "every", in.cfg.TopicWatchInterval, "err", err)
	case err == nil && len(now.missing) > 0 && (was == nil || !slices.Equal(was.missing, now.missing)):
		in.log.Warn("input topics do not exist; waiting for them (not creating them)", "topics", now.missing,
			"checked_every", in.cfg.TopicWatchInterval)
	case err == nil && len(now.missing) == 0 && was != nil && (was.err != nil || len(was.missing) > 0):
		in.log.Info("every input topic exists", "topics", in.cfg.Topics)
	}
	return parts, err
}

// awaitTopics checks the input topics every TopicWatchInterval until at least
// one exists, and returns their partition counts; false when ctx ended.
func (in *Ingester) awaitTopics(ctx context.Context) (map[string]int, bool) {
	for {
		parts, err := in.checkTopics(ctx)
		if err == nil && len(parts) > 0 {
			return parts, true
		}
		select {
		case <-ctx.Done():
			return nil, false
		case <-time.After(in.cfg.TopicWatchInterval):
		}
	}
}

// watchTopics checks the input topics every TopicWatchInterval while the
// group runs, and calls rejoin once they differ from joined (the partition
// counts the group was joined with).
func (in *Ingester) watchTopics(ctx context.Context, joined map[string]int, rejoin func()) {
	t := time.NewTicker(in.cfg.TopicWatchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		parts, err := in.checkTopics(ctx)
		if err != nil || maps.Equal(parts, joined) {
			continue
		}
		in.log.Info("input topics changed: joining the consumer group again", "was", joined, "now", parts)
		rejoin()
		return
	}
}

// Readiness returns why ingest is not consuming yet, or nil: an input topic
// that does not exist (or cannot be described), or no generation of the
// consumer group held yet.
func (in *Ingester) Readiness() error {
	if c := in.topics.Load(); c != nil {
		switch {
		case c.err != nil:
			return c.err
		case len(c.missing) == 1:
			return fmt.Errorf("input topic %s does not exist (waiting for it; checked every %s)", c.missing[0], in.cfg.TopicWatchInterval)
		case len(c.missing) > 1:
			return fmt.Errorf("input topics %s do not exist (waiting for them; checked every %s)",
				strings.Join(c.missing, ", "), in.cfg.TopicWatchInterval)
		}
	}
	if !in.ready.Load() {
		return errors.New("no partitions assigned yet")
	}
	return nil
}

// sortedTopics returns the topics of parts, sorted.
func sortedTopics(parts map[string]int) []string {
	return slices.Sorted(maps.Keys(parts))
}
