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
	s.CAFile = os.Getenv("GAPWATCH_TEST_TLS_CA")
	if s.CAFile == "" {
		state := os.Getenv("GAPWATCH_STATE_DIR")
		if state == "" {
			_, file, _, _ := runtime.Caller(0)
			state = filepath.Join(filepath.Dir(file), "..", "..", ".state")
		}
		s.CAFile = filepath.Join(state, "tls", "ca.pem")
	}
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
