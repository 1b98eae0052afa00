package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// SASLMechanisms are the supported values of kafka.sasl.mechanism.
var SASLMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

// Validate checks the TLS and SASL settings.
func (k Kafka) Validate() error {
	if err := k.TLS.Validate(); err != nil {
		return fmt.Errorf("kafka: tls: %w", err)
	}
	s := k.SASL
	switch {
	case s.Mechanism == "" && (s.Username != "" || s.Password != ""):
		return errors.New("kafka: sasl: username or password given without a mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
	case s.Mechanism == "":
		return nil
	case !slices.Contains(SASLMechanisms, s.Mechanism):
		return fmt.Errorf("kafka: sasl: mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Mechanism)
	case s.Username == "":
		return fmt.Errorf("kafka: sasl: %s needs a username", s.Mechanism)
	}
	return nil
}

// KafkaDialTimeout bounds connecting to a broker, TLS and SASL included, so a
// refusing or silent broker is an error rather than a hang.
const KafkaDialTimeout = 10 * time.Second

// Clients returns the dialer (consumer group, partition fetches) and the
// transport (writers, admin and metadata clients) for every connection to the
// cluster, both speaking the configured TLS and SASL.
func (k Kafka) Clients() (*kafka.Dialer, *kafka.Transport, error) {
	if err := k.Validate(); err != nil {
		return nil, nil, err
	}
	tlsConfig, err := k.TLS.TLS()
	if err != nil {
		return nil, nil, fmt.Errorf("kafka: tls: %w", err)
	}
	mech, err := k.SASL.mechanism()
	if err != nil {
		return nil, nil, err
	}
	d := &kafka.Dialer{ClientID: "gapwatch", Timeout: KafkaDialTimeout, DualStack: true, TLS: tlsConfig, SASLMechanism: mech}
	t := &kafka.Transport{ClientID: "gapwatch", DialTimeout: KafkaDialTimeout, TLS: cloneTLS(tlsConfig), SASL: mech}
	return d, t, nil
}

func cloneTLS(c *tls.Config) *tls.Config {
	if c == nil {
		return nil
	}
	return c.Clone()
}

func (s SASL) mechanism() (sasl.Mechanism, error) {
	switch s.Mechanism {
	case "":
		return nil, nil
	case "PLAIN":
		return plain.Mechanism{Username: s.Username, Password: s.Password}, nil
	case "SCRAM-SHA-256", "SCRAM-SHA-512":
		algo := scram.SHA256
		if s.Mechanism == "SCRAM-SHA-512" {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, s.Username, s.Password)
		if err != nil {
			return nil, fmt.Errorf("kafka: sasl: %w", err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("kafka: sasl: mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Mechanism)
}
