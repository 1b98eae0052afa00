package config

import (
	"errors"
	"fmt"

	"github.com/gapwatch/gapwatch/dashboards/api"
)

// ErrInsecure marks a setting that works but is unsafe in production:
// check-config refuses it.
var ErrInsecure = errors.New("insecure")

// Insecure returns the first setting that would expose credentials or data:
// Kafka SASL credentials over plaintext to a non-loopback broker, ClickHouse
// beyond loopback with an empty password or without TLS, the API beyond
// loopback without tokens. Warnings are unsafe choices made deliberately
// (http.insecure_no_auth) or commonly safe behind a proxy (tokens over plain
// HTTP); they do not fail.
func (c Config) Insecure() (warnings []string, err error) {
	if c.Kafka.SASL.Mechanism != "" && !c.Kafka.TLS.Enabled {
		for _, b := range c.Kafka.Brokers {
			if !api.IsLoopback(b) {
				return nil, fmt.Errorf("%w: kafka: SASL credentials would cross the network in plaintext to %s: set kafka.tls.enabled (GAPWATCH_KAFKA_TLS=true)", ErrInsecure, b)
			}
		}
	}
	if c.Store == "clickhouse" && !api.IsLoopback(c.ClickHouse.Addr) {
		switch {
		case c.ClickHouse.Password == "":
			return nil, fmt.Errorf("%w: clickhouse: user %q with an empty password at %s: set clickhouse.password (GAPWATCH_CLICKHOUSE_PASSWORD)", ErrInsecure, c.ClickHouse.User, c.ClickHouse.Addr)
		case !c.ClickHouse.TLS.Enabled:
			return nil, fmt.Errorf("%w: clickhouse: the password would cross the network in plaintext to %s: set clickhouse.tls.enabled (GAPWATCH_CLICKHOUSE_TLS=true) and the secure port", ErrInsecure, c.ClickHouse.Addr)
		}
	}
	exposed := !api.IsLoopback(c.HTTP.Addr)
	switch {
	case exposed && len(c.HTTP.Tokens) == 0 && !c.HTTP.InsecureNoAuth:
		return nil, fmt.Errorf("%w: http.addr %s: %w", ErrInsecure, c.HTTP.Addr, api.ErrExposed)
	case exposed && len(c.HTTP.Tokens) == 0:
		warnings = append(warnings, fmt.Sprintf("http.insecure_no_auth: the API on %s answers anyone who reaches it", c.HTTP.Addr))
	case exposed && !c.HTTP.TLS.Enabled():
		warnings = append(warnings, fmt.Sprintf("http.tls: bearer tokens reach %s in plaintext unless a TLS proxy is in front", c.HTTP.Addr))
	}
	if c.Kafka.SASL.Mechanism == "PLAIN" && !c.Kafka.TLS.Enabled {
		warnings = append(warnings, "kafka.sasl: PLAIN sends the password as is; use TLS or SCRAM")
	}
	return warnings, nil
}
