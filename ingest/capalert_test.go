package ingest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/detect/live"
	"github.com/gapwatch/gapwatch/ingest/decode"
	"github.com/gapwatch/gapwatch/storage"
)

type capEnvelope struct {
	Type    string  `json:"type"`
	ID      string  `json:"id"`
	Source  string  `json:"source"`
	Subject string  `json:"subject"`
	Data    capData `json:"data"`
}

func capEnvelopes(t *testing.T, as []storage.Alert) []capEnvelope {
	t.Helper()
	out := make([]capEnvelope, len(as))
	for i, a := range as {
		require.NoError(t, json.Unmarshal(a.Payload, &out[i]))
		require.Equal(t, live.TypePipelineDegraded, out[i].Type)
		require.Equal(t, live.PipelineKey, a.Key)
		require.Equal(t, a.ID, out[i].ID)
	}
	return out
}

// applyAt counts one message of events at arrival and returns how many the caps refused.
func applyAt(t *testing.T, c *Counter, arrival time.Time, evs ...decode.Event) int {
	t.Helper()
	refused, err := c.Apply(msgAt(0, 1, arrival), stage(evs...))
	require.NoError(t, err)
	c.Take()
	return refused
}

// A forger with many tenant names makes one alert for the global cap (with a
// sample and the count), not one per name; a tenant at its own cap is named;
// an hour later the caps may page again, with new ids; clearing pages once.
func TestCapAlertsAreRateLimited(t *testing.T) {
	streams := NewStreams(Limits{MaxStreams: 50, MaxStreamsPerTenant: 2, StreamIdle: 10 * time.Minute})
	caps := newCapAlerts(50, 2)
	streams.onCap = caps.observe
	c := NewCounter(time.Minute, streams, Limits{})

	// 12 tenants reach their own cap (3 sources each): 10 named, the rest in one summary.
	var evs []decode.Event
	for i := range 12 {
		for s := range 3 {
			evs = append(evs, cev(fmt.Sprintf("t%02d", i), fmt.Sprint(s), ct0))
		}
	}
	require.Equal(t, 12, applyAt(t, c, ct0, evs...))
	// Again: nothing new this hour.
	require.Equal(t, 12, applyAt(t, c, ct0.Add(time.Minute), evs...))
	got := capEnvelopes(t, caps.take())
	require.Len(t, got, 11)
	for i, e := range got[:10] {
		require.Equal(t, StateStreamCap, e.Data.State)
		require.Equal(t, CapPerTenant, e.Data.Cap)
		require.Equal(t, fmt.Sprintf("t%02d", i), e.Data.Tenant)
		require.Equal(t, 2, e.Data.Limit)
		require.Equal(t, CapAlertSource, e.Source)
	}
	require.Equal(t, capEnvelope{Type: got[10].Type, ID: got[10].ID, Source: CapAlertSource, Subject: "pipeline", Data: capData{
		State: StateStreamCap, Cap: CapPerTenant, Limit: 2, Tenant: "t10", Tenants: []string{"t10", "t11"}, Count: 2,
		Reason: got[10].Data.Reason, Hour: "2026-11-20T10:00:00Z"}}, got[10])

	// A storm of 100 000 forged tenants on the global cap (26 streams left): one alert.
	for i := range 100 {
		evs = evs[:0]
		for j := range 1000 {
			evs = append(evs, cev(fmt.Sprintf("forged-%d-%d", i, j), "x", ct0))
		}
		applyAt(t, c, ct0.Add(2*time.Minute), evs...)
	}
	got = capEnvelopes(t, caps.take())
	require.Len(t, got, 1)
	g := got[0].Data
	require.Equal(t, StateStreamCap, g.State)
	require.Equal(t, CapGlobal, g.Cap)
	require.Equal(t, 50, g.Limit)
	require.Len(t, g.Tenants, capSample)
	require.Equal(t, "forged-0-26", g.Tenant, "the first refused")
	require.Equal(t, 50-12, g.Count, "the tenants first refused, as far as the map of tenants at cap (bounded by max_streams) holds them")
	require.Empty(t, caps.take())

	// The same events to a fresh registry give the same ids (a replay after a restart).
	again := newCapAlerts(50, 2)
	s2 := NewStreams(Limits{MaxStreams: 50, MaxStreamsPerTenant: 2})
	s2.onCap = again.observe
	c2 := NewCounter(time.Minute, s2, Limits{})
	applyAt(t, c2, ct0.Add(30*time.Minute), cev("t00", "0", ct0), cev("t00", "1", ct0), cev("t00", "2", ct0))
	require.Equal(t, capEnvelopes(t, []storage.Alert{(&capAlert{slot: capSlot{"t00", CapPerTenant, StateStreamCap}, hour: ct0.Unix() / 3600}).alert()})[0].ID,
		capEnvelopes(t, again.take())[0].ID)

	// An hour later the forged streams are idle and swept: the global cap has
	// room (cleared, once), and t00 gets a stream again (cleared).
	later := ct0.Add(70 * time.Minute)
	require.Equal(t, 0, applyAt(t, c, later, cev("t00", "9", later), cev("fresh", "x", later)))
	got = capEnvelopes(t, caps.take())
	require.Len(t, got, 2)
	require.Equal(t, capData{State: StateStreamCapCleared, Cap: CapPerTenant, Limit: 2, Tenant: "t00", Count: 1,
		Reason: got[0].Data.Reason, Hour: "2026-11-20T11:00:00Z"}, got[0].Data)
	require.Equal(t, StateStreamCapCleared, got[1].Data.State)
	require.Equal(t, CapGlobal, got[1].Data.Cap)

	// t00 at its cap again, in the new hour: paged again, under a new id.
	require.Equal(t, 1, applyAt(t, c, later, cev("t00", "10", later), cev("t00", "11", later)))
	got = capEnvelopes(t, caps.take())
	require.Len(t, got, 1)
	require.Equal(t, "t00", got[0].Data.Tenant)
	require.Equal(t, StateStreamCap, got[0].Data.State)
	require.Equal(t, "2026-11-20T11:00:00Z", got[0].Data.Hour)
}
