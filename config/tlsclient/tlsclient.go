// Package tlsclient is the client side of a TLS connection as the
// configuration describes it: on or off, and which CA to trust. Kafka and
// ClickHouse settings share it.
package tlsclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Config is `tls: {enabled, ca_file}`. The zero value is plaintext.
type Config struct {
	Enabled bool   `yaml:"enabled"` // default false
	CAFile  string `yaml:"ca_file"` // PEM CA bundle to trust; default the system roots
}

// Validate checks that the CA file, if any, is readable PEM and that TLS is on
// when a CA file is given.
func (c Config) Validate() error {
	if c.CAFile == "" {
		return nil
	}
	if !c.Enabled {
		return fmt.Errorf("ca_file %s is set but TLS is not enabled", c.CAFile)
	}
	_, err := c.pool()
	return err
}

// TLS returns the client TLS configuration, or nil when TLS is off. The server
// name is left empty: the Kafka and ClickHouse clients set it to the host they
// dial.
func (c Config) TLS() (*tls.Config, error) {
	if !c.Enabled {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pool, err := c.pool()
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

func (c Config) pool() (*x509.CertPool, error) {
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("ca_file " + c.CAFile + ": no PEM certificate in it")
	}
	return pool, nil
}
