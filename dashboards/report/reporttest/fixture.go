// Package reporttest writes the report tests' data into a store, so that the
// report package, the API and the command test the same incident on every
// store.
package reporttest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/storage"
)

// Store is what Write needs; both stores implement it.
type Store interface {
	Write(ctx context.Context, b storage.Batch) error
	WriteExpectations(ctx context.Context, xs []storage.Expectation) error
	WriteAlerts(ctx context.Context, b storage.AlertBatch) error
}

// Tenant is the fixture's tenant; Evil one of its sources, named to trip CSV
// and HTML writers.
const (
	Tenant = "acme"
	Evil   = `evil "src",<b>&amp;</b>`
)

// From and To are the report's period: ragged ends (09:30, 13:15) around
// whole hours.
var (
	From = time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)
	To   = time.Date(2026, 11, 20, 13, 15, 0, 0, time.UTC)
)

func at(h, m int) time.Time { return time.Date(2026, 11, 20, h, m, 0, 0, time.UTC) }

// Write stores the incident: per-minute expectations and counts from 08:00
// to 14:00 for firewall (10 a minute), dns (5) and Evil (2), and an other
// tenant's stream that the report must not show; and these gaps:
//   - firewall silence 09:00–09:40, reaching in over From;
//   - firewall silence 10:10–10:40, of which 10:10–10:30 arrives late
//     (200 events, two gap.updated after its resolve);
//   - dns drop 11:00–11:20 (1 of 5 a minute), never filled;
//   - dns silence from 13:00, still open;
//   - Evil silence 12:00–12:10 in a maintenance window (planned);
//   - firewall silence 08:00–09:00, before the period, and the other
//     tenant's gap: neither is in the report.
func Write(tb testing.TB, st Store) {
	ctx := context.Background()
	type stream struct {
		tenant, source string
		rate           float64
	}
	streams := []stream{{Tenant, "firewall", 10}, {Tenant, "dns", 5}, {Tenant, Evil, 2}, {"other", "firewall", 7}}
	silent := func(s stream, t time.Time) bool { // nothing on time
		switch s.source {
		case "firewall":
			return s.tenant == Tenant && (inside(t, at(8, 0), at(9, 0)) || inside(t, at(9, 0), at(9, 40)) || inside(t, at(10, 10), at(10, 40)))
		case "dns":
			return !t.Before(at(13, 0))
		case Evil:
			return inside(t, at(12, 0), at(12, 10))
		}
		return false
	}
	var xs []storage.Expectation
	var counts []storage.Count
	for _, s := range streams {
		for t := at(8, 0); t.Before(at(14, 0)); t = t.Add(time.Minute) {
			observed := uint64(s.rate)
			switch {
			case silent(s, t):
				observed = 0
			case s.source == "dns" && inside(t, at(11, 0), at(11, 20)):
				observed = 1
			}
			xs = append(xs, storage.Expectation{Tenant: s.tenant, Source: s.source, Bucket: t.Unix(), Expected: s.rate,
				Lower: s.rate / 2, Upper: s.rate * 2, Observed: observed, State: "ok"})
			arrival := t.Unix() + 5
			if s.source == "firewall" && s.tenant == Tenant && inside(t, at(10, 10), at(10, 30)) {
				observed, arrival = uint64(s.rate), at(11, 30).Unix() // the backlog, after the resolve
			}
			if observed > 0 {
				counts = append(counts,
					storage.Count{Tenant: s.tenant, Source: s.source, Clock: storage.Event, Bucket: t.Unix(), Events: observed, Arrival: arrival},
					storage.Count{Tenant: s.tenant, Source: s.source, Clock: storage.Arrival, Bucket: time.Unix(arrival, 0).Truncate(time.Minute).Unix(), Events: observed, Arrival: arrival})
			}
		}
	}
	require.NoError(tb, st.Write(ctx, storage.Batch{Counts: counts}))
	require.NoError(tb, st.WriteExpectations(ctx, xs))

	gap := func(typ, id, tenant, source, kind string, seq uint32, started, detected, ended, time_ time.Time, expected, observed float64) storage.Alert {
		return storage.Alert{ID: id + "-" + typ, Type: typ, Time: time_, Key: tenant + "/" + source, Payload: []byte("{}"),
			GapID: id, Tenant: tenant, Source: source, Kind: kind, StartedAt: started, DetectedAt: detected, EndedAt: ended,
			Expected: expected, Observed: observed, Missing: max(0, expected-observed), Seq: seq}
	}
	const (
		opened   = "io.gapwatch.gap.opened"
		updated  = "io.gapwatch.gap.updated"
		resolved = "io.gapwatch.gap.resolved"
	)
	none := time.Time{}
	alerts := []storage.Alert{
		gap(opened, "g-before", Tenant, "firewall", "silence", 0, at(8, 0), at(8, 3), none, at(8, 3), 30, 0),
		gap(resolved, "g-before", Tenant, "firewall", "silence", 1, at(8, 0), at(8, 3), at(9, 0), at(9, 2), 600, 0),
		gap(opened, "g-across", Tenant, "firewall", "silence", 0, at(9, 0), at(9, 3), none, at(9, 3), 30, 0),
		gap(resolved, "g-across", Tenant, "firewall", "silence", 1, at(9, 0), at(9, 3), at(9, 40), at(9, 42), 400, 0),
		gap(opened, "g-filled", Tenant, "firewall", "silence", 0, at(10, 10), at(10, 13), none, at(10, 13), 30, 0),
		gap(updated, "g-filled", Tenant, "firewall", "silence", 1, at(10, 10), at(10, 13), none, at(10, 23), 130, 0),
		gap(resolved, "g-filled", Tenant, "firewall", "silence", 2, at(10, 10), at(10, 13), at(10, 40), at(10, 42), 300, 0),
		gap(updated, "g-filled", Tenant, "firewall", "silence", 3, at(10, 10), at(10, 13), at(10, 40), at(11, 31), 300, 100),
		gap(updated, "g-filled", Tenant, "firewall", "silence", 4, at(10, 10), at(10, 13), at(10, 40), at(11, 32), 300, 200),
		gap(opened, "g-drop", Tenant, "dns", "drop", 0, at(11, 0), at(11, 8), none, at(11, 8), 40, 8),
		gap(resolved, "g-drop", Tenant, "dns", "drop", 1, at(11, 0), at(11, 8), at(11, 20), at(11, 25), 100, 20),
		gap(opened, "g-open", Tenant, "dns", "silence", 0, at(13, 0), at(13, 3), none, at(13, 3), 15, 0),
		gap(opened, "g-planned", Tenant, Evil, "silence", 0, at(12, 0), at(12, 4), none, at(12, 4), 8, 0),
		gap(resolved, "g-planned", Tenant, Evil, "silence", 1, at(12, 0), at(12, 4), at(12, 10), at(12, 12), 20, 0),
		gap(opened, "g-other", "other", "firewall", "silence", 0, at(10, 0), at(10, 3), none, at(10, 3), 21, 0),
	}
	for i := range alerts {
		alerts[i].Planned = alerts[i].GapID == "g-planned"
	}
	require.NoError(tb, st.WriteAlerts(ctx, storage.AlertBatch{DetectProgress: storage.DetectProgress{Shard: 0, Shards: 1, Seq: 1, Watermark: at(14, 0)},
		Alerts: alerts}))
}

func inside(t, from, to time.Time) bool { return !t.Before(from) && t.Before(to) }
