package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func runCmd(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestExitCodes(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("GAPWATCH_STORE", "")
	code, out, _ := runCmd("version")
	require.Equal(t, 0, code)
	require.True(t, strings.HasPrefix(out, "gapwatch "))

	code, out, _ = runCmd("check-config")
	require.Equal(t, 0, code)
	require.Contains(t, out, "brokers:")

	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"run", "--role", "ingest,bogus"},
		{"run", "--no-such-flag"},
		{"check-config", "--config", "/nonexistent/gapwatch.yaml"},
		{"backtest"},
		{"run", "--http-addr", ":8080"}, // every interface, no tokens
		{"run", "--role", "api", "--http-addr", "0.0.0.0:8080"},
		{"demo", "--http-addr", "10.0.0.1:8080"},
	} {
		code, _, stderr := runCmd(args...)
		require.Equal(t, 2, code, "%v", args)
		require.Equal(t, 1, strings.Count(stderr, "\n"), "%v: one-line reason, got %q", args, stderr)
	}
	// check-config refuses what is unsafe in production, in one line.
	require.NoError(t, os.WriteFile("typo.yaml", []byte("kafka: {tsl: {enabled: true}}\nhttp: {tokenz: []}\n"), 0o600))
	require.NoError(t, os.WriteFile("exposed.yaml", []byte("http: {addr: ':8080'}\n"), 0o600))
	require.NoError(t, os.WriteFile("plain-sasl.yaml", []byte("kafka: {brokers: [kafka.example:9092], sasl: {mechanism: PLAIN, username: u, password: p}}\n"), 0o600))
	for file, reason := range map[string]string{"typo.yaml": "tsl", "exposed.yaml": "http.tokens", "plain-sasl.yaml": "plaintext"} {
		code, out, stderr := runCmd("check-config", "--config", file)
		require.Equal(t, 2, code, file)
		require.Empty(t, out, file)
		require.Equal(t, 1, strings.Count(stderr, "\n"), "%s: one-line reason, got %q", file, stderr)
		require.Contains(t, stderr, reason)
	}
	// Every command takes --config.
	code, _, stderr := runCmd("version", "--config", "exposed.yaml")
	require.Equal(t, 0, code, stderr)
	code, _, stderr = runCmd("backtest", "--config", "typo.yaml", "--input", "-", "--out", "-")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "tsl", "backtest reads its --config")

	t.Setenv("GAPWATCH_BUCKET", "7s")
	code, _, stderr = runCmd("check-config")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "bucket")
}

// syncBuffer is a bytes.Buffer safe to read while the demo writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestDemoServesCounts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- cmdDemo(ctx, []string{"--http-addr", addr, "--rate", "500", "--duration", "60s"}, &out)
	}()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()

	deadline := time.Now().Add(45 * time.Second)
	for {
		stored := metricValue(t, addr, "gapwatch_ingest_events_stored_total")
		if stored > 0 && metricValue(t, addr, `gapwatch_ingest_rejected_total{reason="invalid_json"}`) == 1 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the demo stored nothing in 45s:\n%s", out.String())
		time.Sleep(250 * time.Millisecond)
	}
	require.Contains(t, out.String(), "http://"+addr+"/api/v1/rates?")
	resp, err := http.Get("http://" + addr + "/api/v1/rates?tenant=contoso&source=firewall&from=" +
		time.Now().UTC().Add(-2*time.Minute).Format(time.RFC3339))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Regexp(t, `"events":[1-9]`, string(body), "contoso/firewall has counts")
}

// metricValue reads one sample from /metrics; -1 when absent or unreachable.
func metricValue(t *testing.T, addr, series string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		var v float64
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return -1
}
