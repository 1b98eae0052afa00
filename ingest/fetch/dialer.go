package fetch

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"

	"github.com/segmentio/kafka-go"
)

// fetchReadBuffer is the read buffer under a fetch connection.
const fetchReadBuffer = 256 << 10

// rawConnKey is the context key under which Reader.dialVia asks
// bufferedDialer's dial function for the connection it made.
type rawConnKey struct{}

// bufferedDialer returns a copy of d whose connections read through a
// fetchReadBuffer buffer and can be handed to a Reader (rawConnKey). It does
// d's TLS itself, so that the connection handed over is the one that carries
// the requests.
func bufferedDialer(d *kafka.Dialer) *kafka.Dialer {
	c := *d
	dial := d.DialFunc
	if dial == nil {
		dial = (&net.Dialer{LocalAddr: d.LocalAddr, FallbackDelay: d.FallbackDelay, KeepAlive: d.KeepAlive}).DialContext
	}
	tlsConfig := d.TLS
	c.TLS = nil
	c.DialFunc = func(ctx context.Context, network, address string) (net.Conn, error) {
		conn, err := dial(ctx, network, address)
		if err != nil {
			return nil, err
		}
		if tlsConfig != nil {
			cfg := tlsConfig
			if cfg.ServerName == "" { // as kafka-go: the host dialed
				cfg = cfg.Clone()
				cfg.ServerName, _, _ = net.SplitHostPort(address)
			}
			tc := tls.Client(conn, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				conn.Close()
				return nil, err
			}
			conn = tc
		}
		bc := &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, fetchReadBuffer)}
		if slot, ok := ctx.Value(rawConnKey{}).(**bufferedConn); ok {
			*slot = bc
		}
		return bc, nil
	}
	return &c
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
