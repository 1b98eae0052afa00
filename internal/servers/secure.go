package servers

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Secure is the SASL_SSL listener of the test Kafka and the TLS port of the
// test ClickHouse that deploy/services.sh sets up, with the throwaway CA that
// signed both and the SCRAM user it created.
type Secure struct {
	KafkaBrokers       []string // GAPWATCH_TEST_KAFKA_SASL_BROKERS, default 127.0.0.1:9094
	ClickHouseAddr     string   // GAPWATCH_TEST_CLICKHOUSE_TLS_ADDR, default 127.0.0.1:9440
	CAFile             string   // GAPWATCH_TEST_TLS_CA, default $GAPWATCH_STATE_DIR/tls/ca.pem
	Username, Password string   // the SCRAM (and PLAIN) user of deploy/services.sh (password from its state: tls/sasl-password)
}

// SecureServers returns the secure endpoints, skipping tb when the services were
// started by a services.sh that did not make them yet (no CA file: restart
// them), and failing it when the CA exists but a listener does not answer.
func SecureServers(tb testing.TB) Secure {
	tb.Helper()
	Required(tb)
	s := Secure{KafkaBrokers: []string{"127.0.0.1:9094"}, ClickHouseAddr: "127.0.0.1:9440", Username: "gapwatch"}
	if v := os.Getenv("GAPWATCH_TEST_KAFKA_SASL_BROKERS"); v != "" {
		s.KafkaBrokers = []string{v}
	}
	if v := os.Getenv("GAPWATCH_TEST_CLICKHOUSE_TLS_ADDR"); v != "" {
		s.ClickHouseAddr = v
	}
	s.CAFile = testCA()
	if _, err := os.Stat(s.CAFile); err != nil {
		tb.Skipf("no test CA at %s: the services were started before deploy/services.sh made the SASL_SSL and TLS ports; restart them (or set GAPWATCH_TEST_TLS_CA)", s.CAFile)
	}
	// The SCRAM user's password, made by services.sh beside the CA.
	pw, err := os.ReadFile(filepath.Join(filepath.Dir(s.CAFile), "sasl-password"))
	if err != nil {
		tb.Fatalf("the SASL_SSL test user's password (made by deploy/services.sh beside the CA): %v", err)
	}
	s.Password = strings.TrimSpace(string(pw))
	for _, addr := range []string{s.KafkaBrokers[0], s.ClickHouseAddr} {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			tb.Fatalf("secure listener %s is not answering (restart the services with deploy/services.sh): %v", addr, err)
		}
		c.Close()
	}
	return s
}

// testCA is the test CA's file: GAPWATCH_TEST_TLS_CA, default
// $GAPWATCH_STATE_DIR/tls/ca.pem.
func testCA() string {
	if ca := os.Getenv("GAPWATCH_TEST_TLS_CA"); ca != "" {
		return ca
	}
	state := os.Getenv("GAPWATCH_STATE_DIR")
	if state == "" {
		_, file, _, _ := runtime.Caller(0)
		state = filepath.Join(filepath.Dir(file), "..", "..", ".state")
	}
	return filepath.Join(state, "tls", "ca.pem")
}

// KafkaSSL returns the test Kafka's SSL listener (TLS only, no SASL;
// GAPWATCH_TEST_KAFKA_SSL_BROKERS, default 127.0.0.1:9095) and the CA file
// that signed its certificate. It skips tb when the listener does not answer:
// services started by a deploy/services.sh that did not have it yet get it at
// their next restart.
func KafkaSSL(tb testing.TB) (brokers []string, caFile string) {
	tb.Helper()
	Required(tb)
	brokers = []string{"127.0.0.1:9095"}
	if v := os.Getenv("GAPWATCH_TEST_KAFKA_SSL_BROKERS"); v != "" {
		brokers = strings.Split(v, ",")
	}
	caFile = testCA()
	if _, err := os.Stat(caFile); err != nil {
		tb.Skipf("no test CA at %s: the services were started before deploy/services.sh made the TLS listeners; restart them (or set GAPWATCH_TEST_TLS_CA)", caFile)
	}
	c, err := net.DialTimeout("tcp", brokers[0], 3*time.Second)
	if err != nil {
		tb.Skipf("no Kafka SSL listener (TLS only) at %s: the running services were started before deploy/services.sh had it; "+
			"restart them (deploy/services.sh stop && deploy/services.sh start) to run this test, or set GAPWATCH_TEST_KAFKA_SSL_BROKERS: %v", brokers[0], err)
	}
	c.Close()
	return brokers, caFile
}
