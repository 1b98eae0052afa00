package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/config"
	"github.com/gapwatch/gapwatch/internal/servers"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// An API-only process lists tenants from storage and reports the ingest
// watermark over the input topic's partitions, as Kafka has them.
func TestAPIOnlyServesTenantsAndStatus(t *testing.T) {
	brokers := servers.Kafka(t)
	topic := servers.Unique("apionly")
	servers.CreateTopic(t, brokers, topic, 2)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	cfg, err := config.Load("", func(k string) string {
		return map[string]string{"GAPWATCH_KAFKA_BROKERS": brokers[0], "GAPWATCH_INPUT_TOPICS": topic, "GAPWATCH_HTTP_ADDR": addr}[k]
	})
	require.NoError(t, err)
	st := memstore.New(0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runRoles(ctx, cfg, map[string]bool{"api": true}, st, newRegistry(), newLogger()) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()

	status := func() map[string]any {
		t.Helper()
		var out map[string]any
		require.Eventually(t, func() bool {
			resp, err := http.Get("http://" + addr + "/api/v1/status")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&out) == nil
		}, 10*time.Second, 50*time.Millisecond)
		return out
	}
	s := status()
	require.Equal(t, []any{"api"}, s["roles"])
	require.Equal(t, versionString(), s["version"])
	require.Nil(t, s["watermark"])
	require.Contains(t, s["watermark_unknown"], "no progress stored for "+topic+"/0")

	wm := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	require.NoError(t, st.Write(ctx, storage.Batch{
		Counts: []storage.Count{{Tenant: "acme", Source: "fw", Bucket: wm.Unix(), Events: 3}},
		Offsets: []storage.Offset{{Topic: topic, Partition: 0, Next: 3, ArrivalHW: wm.Add(time.Second)},
			{Topic: topic, Partition: 1, Next: 1, ArrivalHW: wm}}}))
	s = status()
	require.Equal(t, wm.Format(time.RFC3339), s["watermark"], "the lower of the partitions'")
	require.InDelta(t, 60, s["lag_seconds"], 30)

	resp, err := http.Get("http://" + addr + "/api/v1/tenants")
	require.NoError(t, err)
	defer resp.Body.Close()
	var tenants []map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tenants))
	require.Equal(t, []map[string]any{{"tenant": "acme", "sources": []any{"fw"}}}, tenants)
}
