package main

import (
	"context"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/simulate"
)

// TestDemoTellsTheStory runs `gapwatch demo` (in process: embedded broker,
// in-memory store; no servers needed, but it takes minutes, so it runs with
// the integration tests) and checks that the story is found as scripted:
// a silence for every stream the agent bug stops, the drop of the failing
// collector, the late stream, coverage.missing for the premium audit never
// sent, the maintenance window's gap planned and never published, and no
// gap at all on a stream the story leaves healthy.
func TestDemoTellsTheStory(t *testing.T) {
	if os.Getenv("GAPWATCH_INTEGRATION") == "" || testing.Short() {
		t.Skip("a story of minutes: run with GAPWATCH_INTEGRATION=1 (make test)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()

	start := time.Now()
	sc := simulate.Config{Story: true, Tenants: 30, Rate: 300, Seed: 1}
	gen := simulate.NewGenerator(sc, start)
	story := gen.Story()
	want := map[[2]string]string{} // stream → the kind of gap it must have
	for _, s := range gen.Streams() {
		k := [2]string{s.Tenant, s.Source}
		switch story.Roles[k] {
		case simulate.RoleAgentBug, simulate.RoleMaintenance:
			want[k] = "silence"
		case simulate.RoleCollector:
			want[k] = "drop"
		case simulate.RoleDelay:
			want[k] = "late"
		}
	}
	require.Greater(t, len(want), 20)
	require.Less(t, len(want), len(gen.Streams())/2, "the agent bug must hit well under half the streams (input-quiet rollup)")

	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- cmdDemo(ctx, []string{"--http-addr", addr, "--duration", "10m", "--progress", "2s"}, &out)
	}()
	defer func() {
		cancel()
		require.NoError(t, <-done)
		if t.Failed() {
			t.Logf("demo output:\n%s", out.String())
		}
	}()

	type gapJSON struct {
		Tenant, Source, Kind string
		Planned              bool
		StartedAt            string `json:"started_at"`
	}
	var firstGap time.Duration
	found := map[[2]string]gapJSON{}
	var last []gapJSON
	deadline := start.Add(8 * time.Minute)
	for {
		var gaps []gapJSON
		if metricValue(t, addr, "gapwatch_detect_streams") > 0 {
			getJSON(t, "http://"+addr+"/api/v1/gaps?state=all", &gaps)
		}
		for _, g := range gaps {
			k := [2]string{g.Tenant, g.Source}
			require.Contains(t, want, k, "a gap on a stream the story leaves healthy: %+v (%s)", g, story.Org(g.Tenant))
			if firstGap == 0 {
				firstGap = time.Since(start)
				t.Logf("first gap in /api/v1/gaps %s after the demo started: %+v", firstGap.Round(time.Second), g)
			}
			require.Equal(t, story.Roles[k] == simulate.RoleMaintenance, g.Planned, "%s %s: planned only inside the maintenance window", story.Org(k[0]), k[1])
			if _, ok := found[k]; !ok && g.Kind == want[k] {
				found[k] = g
				t.Logf("%s: %s %s %s (%s)", time.Since(start).Round(time.Second), g.Kind, story.Org(g.Tenant), g.Source, story.Roles[k])
			}
		}
		last = gaps
		covered := regexp.MustCompile(`coverage\.missing\s+` + story.Org(story.NeverSent[0]) + ` ` + story.NeverSent[1]).MatchString(out.String())
		if len(found) == len(want) && covered {
			break
		}
		if time.Now().After(deadline) {
			var missing []string
			for k, kind := range want {
				if _, ok := found[k]; !ok {
					missing = append(missing, kind+" "+story.Org(k[0])+" "+k[1])
				}
			}
			slices.Sort(missing)
			require.Failf(t, "the story was not found in 8 minutes", "missing: %s; coverage.missing told: %v", strings.Join(missing, ", "), covered)
		}
		time.Sleep(2 * time.Second)
	}
	require.Less(t, firstGap, 2*time.Minute, "the first gap within 2 minutes of the demo's start")
	// Planned gaps are never published: gap.opened was published once for
	// each of the others.
	time.Sleep(3 * time.Second) // a step stored is published right after
	unplanned := 0
	for _, g := range last {
		if !g.Planned {
			unplanned++
		}
	}
	published := metricValue(t, addr, `gapwatch_alerts_published_total{type="io.gapwatch.gap.opened"}`)
	require.LessOrEqual(t, float64(unplanned), published, "gap.opened published for every gap but the planned one")
	require.LessOrEqual(t, published, float64(unplanned+1), "gap.opened published for every gap but the planned one")
	// Every simulated format decodes: only the four bad samples are rejected.
	rejected := regexp.MustCompile(`rejected (\d+)`).FindAllStringSubmatch(out.String(), -1)
	require.NotEmpty(t, rejected)
	require.Equal(t, "4", rejected[len(rejected)-1][1])
	require.NotContains(t, out.String(), "unexplained: no incident")
}
