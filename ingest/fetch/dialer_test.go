package fetch

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/stretchr/testify/require"
)

// bufferedDialer takes TLS over from kafka-go's Dialer, so that the
// connection it hands to the Reader is the one that carries the requests:
// the handshake verifies the host dialed, and what the Reader writes and
// reads goes through TLS.
func TestBufferedDialerDoesTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "over tls")
	}))
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	d := bufferedDialer(&kafka.Dialer{TLS: &tls.Config{RootCAs: roots}})
	require.Nil(t, d.TLS, "kafka-go must not wrap the connection again")

	var raw *bufferedConn
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), rawConnKey{}, &raw), 10*time.Second)
	defer cancel()
	conn, err := d.DialFunc(ctx, "tcp", srv.Listener.Addr().String()) // 127.0.0.1:port, in the certificate
	require.NoError(t, err)
	defer conn.Close()
	require.Same(t, conn, raw, "the Reader gets the connection the Dialer returned")
	_, ok := raw.Conn.(*tls.Conn)
	require.True(t, ok, "under the buffer: a TLS connection")

	_, err = fmt.Fprint(raw, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(raw), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// A certificate that does not name the host dialed is refused.
	bad := bufferedDialer(&kafka.Dialer{TLS: &tls.Config{RootCAs: roots, ServerName: "kafka.example.net"}})
	_, err = bad.DialFunc(ctx, "tcp", srv.Listener.Addr().String())
	require.ErrorContains(t, err, "certificate")
}

// The Reader's connections all carry the Dialer's TLS and SASL: the fetch
// connection (bufferedDialer keeps the SASL mechanism, for kafka-go's Dialer
// to authenticate with, and does the TLS) and the offset lists (Transport).
func TestReaderKeepsDialerSecurity(t *testing.T) {
	tlsConfig := &tls.Config{ServerName: "kafka.example.net"}
	mech := plain.Mechanism{Username: "u", Password: "p"}
	d := &kafka.Dialer{TLS: tlsConfig, SASLMechanism: mech, ClientID: "gw"}
	r, err := NewReader(Config{Brokers: []string{"127.0.0.1:1"}, Topic: "t", Dialer: d}, 0)
	require.NoError(t, err)
	require.Equal(t, mech, r.dialer.SASLMechanism)
	require.Nil(t, r.dialer.TLS, "TLS is done in the buffered dialer's DialFunc")
	require.NotNil(t, r.dialer.DialFunc)
	require.Same(t, tlsConfig, r.transport.TLS)
	require.Equal(t, mech, r.transport.SASL)
	require.Equal(t, "gw", r.transport.ClientID)
	require.Equal(t, "gw", r.dialer.ClientID)
}
