package api_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/dashboards/api"
)

// timeoutServer serves the API on a real loopback listener with short
// timeouts; GET / is page, a handler of the test's.
func timeoutServer(t *testing.T, page http.Handler) string {
	t.Helper()
	srv := api.New(api.Config{}, api.Deps{Page: page, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	// Read (the whole request) is long: the header and idle limits must be
	// their own, not ReadTimeout's fallback.
	srv.Timeouts = api.Timeouts{ReadHeader: 200 * time.Millisecond, Read: 3 * time.Second, Write: 300 * time.Millisecond, Idle: 300 * time.Millisecond}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return ln.Addr().String()
}

// closedWithin reads c until the server closes it and returns how long that
// took; it fails the test if the connection is still open after limit.
func closedWithin(t *testing.T, c net.Conn, limit time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	require.NoError(t, c.SetReadDeadline(began.Add(limit)))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %s", limit)
	}
	return time.Since(began)
}

func TestServerTimeouts(t *testing.T) {
	t.Run("slowloris: headers byte by byte are cut off at the read-header timeout", func(t *testing.T) {
		addr := timeoutServer(t, nil)
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		began := time.Now()
		go func() {
			req := "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + strings.Repeat("a", 1000) + "\r\n\r\n"
			for i := range len(req) {
				if _, err := c.Write([]byte{req[i]}); err != nil {
					return // cut off
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
		closedWithin(t, c, 1500*time.Millisecond)
		took := time.Since(began)
		t.Logf("slowloris cut off after %s", took.Round(time.Millisecond))
		require.GreaterOrEqual(t, took, 150*time.Millisecond, "not before the read-header timeout (its clock starts at accept)")
	})

	t.Run("an idle keep-alive connection is closed at the idle timeout", func(t *testing.T) {
		addr := timeoutServer(t, nil)
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		r := bufio.NewReader(c)
		for range 2 { // the connection is kept alive between requests
			_, err = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
			require.NoError(t, err)
			resp, err := http.ReadResponse(r, nil)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, "ok\n", string(body))
			require.False(t, resp.Close)
		}
		began := time.Now()
		require.NoError(t, c.SetReadDeadline(began.Add(1500*time.Millisecond)))
		_, err = r.ReadByte()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("idle connection still open after 1.5 s")
		}
		took := time.Since(began)
		t.Logf("idle connection closed after %s", took.Round(time.Millisecond))
		require.ErrorIs(t, err, io.EOF)
		require.GreaterOrEqual(t, took, 250*time.Millisecond)
	})

	t.Run("the write timeout bounds a response to a client that does not read", func(t *testing.T) {
		wrote := make(chan error, 1)
		began := make(chan time.Time, 1)
		addr := timeoutServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			began <- time.Now()
			chunk := make([]byte, 64<<10)
			for range 1 << 10 { // 64 MiB: far more than the sockets' buffers
				if _, err := w.Write(chunk); err != nil {
					wrote <- err
					return
				}
			}
			wrote <- nil
		}))
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		require.NoError(t, err)
		// The client reads nothing.
		start := <-began
		select {
		case err := <-wrote:
			took := time.Since(start)
			t.Logf("response cut off after %s: %v", took.Round(time.Millisecond), err)
			require.Error(t, err, "the whole response was written to a client that reads nothing")
			require.Less(t, took, 1500*time.Millisecond)
		case <-time.After(3 * time.Second):
			t.Fatal("the response is still being written after 3 s")
		}
		closedWithin(t, c, 3*time.Second) // and the connection is closed
	})
}
