package simulate

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/storage"
)

func storyGen(t testing.TB, start time.Time) *Generator {
	cfg := Config{Story: true, Tenants: 30, Rate: 300, Seed: 1}
	require.NoError(t, cfg.WithDefaults().Validate())
	return NewGenerator(cfg, start)
}

func TestStoryLayout(t *testing.T) {
	for _, start := range []time.Time{
		time.Date(2026, 12, 5, 7, 42, 49, 0, time.UTC),
		time.Date(2026, 12, 5, 7, 42, 50, 0, time.UTC),
		time.Date(2026, 12, 5, 7, 43, 0, 0, time.UTC),
	} {
		g := storyGen(t, start)
		st := g.Story()
		bug := start.Add(st.BugAt)
		require.True(t, st.BugAt >= 10*time.Second && st.BugAt < 70*time.Second, "bug at %s", st.BugAt)
		require.Zero(t, bug.Second(), "on a minute boundary")
		require.Len(t, st.BugTenants, 12)
		roles := map[string]int{}
		for _, s := range g.Streams() {
			roles[st.Roles[[2]string{s.Tenant, s.Source}]]++
		}
		require.Less(t, roles[RoleAgentBug], len(g.Streams())/2, "the bug hits well under half the streams")
		require.GreaterOrEqual(t, roles[RoleAgentBug], 24)
		for _, r := range []string{RoleCollector, RoleMaintenance, RoleDelay} {
			require.Equal(t, 1, roles[r], r)
		}
		require.Zero(t, roles[RoleNeverSent], "the premium stream never sent is no stream")
		require.Equal(t, []string{PremiumLabel}, st.Labels[st.NeverSent[0]])
		require.Equal(t, RoleNeverSent, st.Roles[st.NeverSent])
	}
}

// TestTickIncidents: the agent bug silences, the failing collector loses a
// third, the delay grows lateness, and every rendered message is JSON.
func TestTickIncidents(t *testing.T) {
	start := time.Date(2026, 12, 5, 12, 0, 30, 0, time.UTC)
	g := storyGen(t, start)
	st := g.Story()
	rate := map[[2]string]float64{}
	for _, s := range g.Streams() {
		rate[[2]string{s.Tenant, s.Source}] = s.RateAt(start.Add(5 * time.Minute))
	}
	at := start.Add(st.BugAt + time.Minute)
	msgs, sent := g.Tick(at, 5*time.Minute)
	for k, role := range st.Roles {
		n, want := float64(sent[k]), rate[k]*300
		switch role {
		case RoleAgentBug, RoleMaintenance:
			require.Zero(t, n, "%v", k)
		case RoleCollector:
			require.InDelta(t, want/2, n, 4*math.Sqrt(want), "%v", k)
		}
	}
	var latest time.Duration
	for _, m := range msgs {
		var v map[string]any
		require.NoError(t, json.Unmarshal(m.Value, &v), "%s", m.Value)
		if v["log_type"] == SourceEDR && st.Roles[[2]string{v["tenant_id"].(string), SourceEDR}] == RoleDelay {
			latest = max(latest, m.Time.Sub(time.UnixMilli(int64(v["timestamp"].(float64)))))
		}
	}
	// 15 s a minute, from 1 to 6 minutes after the bug (and BugAt) into the incident.
	require.Greater(t, latest, 15*time.Second*time.Duration((st.BugAt+time.Minute)/time.Minute))
}

// TestHistory: the history ends at its end exactly, its counts follow the
// streams' rates, and its lateness classes add up.
func TestHistory(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 7, 42, 20, 0, time.UTC)
	g := storyGen(t, t0)
	var total, want float64
	buckets := map[int64]bool{}
	require.NoError(t, g.History(t0.Add(-6*time.Hour), t0, time.Minute, func(cs []storage.Count) error {
		for _, c := range cs {
			require.Equal(t, storage.Arrival, c.Clock)
			var sum uint64
			for _, n := range c.Lateness {
				sum += n
			}
			require.Equal(t, c.Events, sum)
			require.True(t, c.Arrival >= c.Bucket && c.Arrival < min(c.Bucket+60, t0.Unix()), "first arrival inside the bucket, before t0")
			total += float64(c.Events)
			buckets[c.Bucket] = true
		}
		return nil
	}))
	for _, s := range g.Streams() {
		for b := t0.Add(-6 * time.Hour).Unix(); b < t0.Unix(); b += 60 {
			want += s.RateAt(time.Unix(b+30, 0)) * float64(min(60, t0.Unix()-b))
		}
	}
	require.InEpsilon(t, want, total, 0.01)
	require.True(t, buckets[storage.BucketStart(t0, time.Minute)], "the bucket holding the end is counted up to it")
	require.Len(t, buckets, 6*60+1)
}

// TestIncidentAtItsBoundary: a tick that straddles the agent bug's start
// sends nothing of the streams it stops from then on (a busy stream that
// sent in the bucket where it stopped is not flagged early in it).
func TestIncidentAtItsBoundary(t *testing.T) {
	start := time.Date(2026, 12, 5, 12, 0, 30, 300_000_000, time.UTC)
	g := storyGen(t, start)
	st := g.Story()
	bug := start.Add(st.BugAt)
	var before int
	for range 20 {
		msgs, _ := g.Tick(bug.Add(-500*time.Millisecond), time.Second)
		for _, m := range msgs {
			parts := strings.SplitN(string(m.Key), "/", 2)
			role := st.Roles[[2]string{parts[0], parts[1]}]
			if role != RoleAgentBug && role != RoleMaintenance {
				continue
			}
			require.True(t, m.Time.Before(bug), "%s sent at %s, after the bug at %s", m.Key, m.Time, bug)
			before++
		}
	}
	require.Positive(t, before, "they sent until the bug")
}
