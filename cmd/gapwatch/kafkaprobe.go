package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// kafkaProbe asks the cluster for its API versions every few seconds through
// the configured transport (TLS, SASL), so that an unreachable broker or a
// refused credential shows in /readyz and once in the log instead of as a
// consumer that quietly never gets partitions.
type kafkaProbe struct {
	client  *kafka.Client
	brokers string
	every   time.Duration
	log     *slog.Logger

	mu  sync.Mutex
	err error // nil once the last probe succeeded
}

var errNotProbed = errors.New("connecting")

func newKafkaProbe(brokers []string, transport kafka.RoundTripper, log *slog.Logger) *kafkaProbe {
	return &kafkaProbe{
		client:  &kafka.Client{Addr: kafka.TCP(brokers...), Transport: transport, Timeout: 5 * time.Second},
		brokers: strings.Join(brokers, ","),
		every:   3 * time.Second,
		log:     log.With("component", "kafka"),
		err:     errNotProbed,
	}
}

// Run probes until ctx ends; it logs each change of state.
func (p *kafkaProbe) Run(ctx context.Context) error {
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := p.client.ApiVersions(pctx, &kafka.ApiVersionsRequest{})
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			err = describeKafkaError(p.brokers, err)
		}
		p.mu.Lock()
		changed := (p.err == nil) != (err == nil) || (err != nil && p.err.Error() != err.Error())
		p.err = err
		p.mu.Unlock()
		switch {
		case changed && err != nil:
			p.log.Error("Kafka unusable", "brokers", p.brokers, "err", err)
		case changed:
			p.log.Info("connected to Kafka", "brokers", p.brokers)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(p.every):
		}
	}
}

// Check is the readiness condition: the last probe's error.
func (p *kafkaProbe) Check(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// describeKafkaError names the likely cause of err for people.
func describeKafkaError(brokers string, err error) error {
	var kerr kafka.Error
	switch {
	case errors.As(err, &kerr) && (kerr == kafka.SASLAuthenticationFailed || kerr == kafka.UnsupportedSASLMechanism || kerr == kafka.IllegalSASLState):
		return fmt.Errorf("Kafka at %s: authentication failed (check kafka.sasl mechanism, username and password): %w", brokers, err)
	case strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "x509:"):
		return fmt.Errorf("Kafka at %s: TLS handshake failed (check kafka.tls and the CA file): %w", brokers, err)
	}
	return fmt.Errorf("Kafka at %s: %w", brokers, err)
}
