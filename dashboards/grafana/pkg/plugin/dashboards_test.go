package plugin

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/stretchr/testify/require"
)

// The provisioned dashboards are the source of truth (JSON, edited by hand or
// in Grafana and exported). These checks keep them loadable and wired to the
// plugin: stable UIDs, every panel on gapwatch's datasource (or the
// Prometheus one) through a variable, queries the plugin answers, variables
// that exist, and frame fields that the plugin really returns.

const dashboardDir = "../../provisioning/dashboards"

// The dashboards and their UIDs: links and bookmarks depend on them.
var wantDashboards = map[string]string{
	"fleet-coverage.json":    "gapwatch-fleet",
	"tenant-drilldown.json":  "gapwatch-tenant",
	"coverage-audit.json":    "gapwatch-audit",
	"gapwatch-pipeline.json": "gapwatch-self",
}

// The datasources a panel or query may name: by variable, never by a
// particular instance's uid.
var allowedDatasources = map[string]string{
	ID:           "${datasource}",
	"prometheus": "${prometheus}",
}

// Fields of the frames the plugin returns (frames.go), by query type.
var frameFields = map[string][]string{
	QueryGaps:     {"started_at", "detected_at", "ended_at", "tenant", "source", "kind", "expected_events", "missing_events", "id"},
	QueryCoverage: {"time", "share"},
	QueryRates:    {"time", "events", "expected", "lower", "upper"},
	QueryStreams:  {"tenant", "source", "status", "last_seen", "events_per_min", "profile", "weekend"},
	QueryExplain: {"time", "observed", "expected", "judged", "state", "drop_share", "silence_share", "late_share",
		"drop50", "drop75", "rank", "drop_threshold", "silence_logp", "silence_threshold", "late", "late_threshold"},
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type target struct {
	RefID      string `json:"refId"`
	Datasource *dsRef `json:"datasource"`
	QueryType  string `json:"queryType"`
	Expr       string `json:"expr"`
	raw        json.RawMessage
}

type panelJSON struct {
	ID              int               `json:"id"`
	Title           string            `json:"title"`
	Type            string            `json:"type"`
	Datasource      *dsRef            `json:"datasource"`
	Targets         []json.RawMessage `json:"targets"`
	Panels          []panelJSON       `json:"panels"`
	Repeat          string            `json:"repeat"`
	Transformations []json.RawMessage `json:"transformations"`
	FieldConfig     json.RawMessage   `json:"fieldConfig"`
	Options         json.RawMessage   `json:"options"`
}

type dashboardJSON struct {
	UID         string      `json:"uid"`
	Title       string      `json:"title"`
	Panels      []panelJSON `json:"panels"`
	Annotations struct {
		List []struct {
			Name       string          `json:"name"`
			Datasource *dsRef          `json:"datasource"`
			Target     json.RawMessage `json:"target"`
			Mappings   map[string]struct {
				Source string `json:"source"`
				Value  string `json:"value"`
			} `json:"mappings"`
		} `json:"list"`
	} `json:"annotations"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Query      any    `json:"query"`
			Datasource *dsRef `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

func loadDashboards(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dashboardDir, "*.json"))
	require.NoError(t, err)
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		out[filepath.Base(f)] = b
	}
	return out
}

func allPanels(ps []panelJSON) []panelJSON {
	var out []panelJSON
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// Each dashboard loads strictly into the Grafana Foundation SDK's dashboard
// type (unknown or mistyped fields fail) and passes its validation.
func TestDashboardsLoadWithFoundationSDK(t *testing.T) {
	for name, b := range loadDashboards(t) {
		var d dashboard.Dashboard
		require.NoError(t, strict(d.UnmarshalJSONStrict(b)), name)
		require.NoError(t, d.Validate(), name)
		require.NotNil(t, d.Uid, name)
		require.Equal(t, wantDashboards[name], *d.Uid, name)
	}
}

// strict is err, or nil for the empty error list the SDK's strict
// unmarshalling returns on success (a nil cog.BuildErrors in an error).
func strict(err error) error {
	if be, ok := err.(cog.BuildErrors); ok && len(be) == 0 {
		return nil
	}
	return err
}

func TestDashboards(t *testing.T) {
	files := loadDashboards(t)
	var names []string
	for n := range files {
		names = append(names, n)
	}
	var want []string
	for n := range wantDashboards {
		want = append(want, n)
	}
	slices.Sort(names)
	slices.Sort(want)
	require.Equal(t, want, names, "the dashboards in %s", dashboardDir)

	used := map[string]bool{}
	varRef := regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)
	for name, b := range files {
		t.Run(name, func(t *testing.T) {
			var d dashboardJSON
			require.NoError(t, json.Unmarshal(b, &d))
			require.Equal(t, wantDashboards[name], d.UID)

			vars := map[string]string{}
			for _, v := range d.Templating.List {
				vars[v.Name] = v.Type
				if v.Type == "query" {
					require.Equal(t, &dsRef{Type: ID, UID: "${datasource}"}, v.Datasource, "variable %s", v.Name)
					q, _ := v.Query.(string)
					require.Regexp(t, `^(tenants|sources\(\$tenant\))$`, q, "variable %s: a query the frontend's metricFindQuery answers", v.Name)
				}
			}
			// A variable a dashboard uses must exist; Grafana's built-ins excepted.
			checkVars := func(where, text string) {
				for _, m := range varRef.FindAllStringSubmatch(text, -1) {
					if strings.HasPrefix(m[1], "__") {
						continue
					}
					_, ok := vars[m[1]]
					require.True(t, ok, "%s uses $%s, which is not a variable of the dashboard", where, m[1])
				}
			}
			checkDS := func(where string, ds *dsRef) {
				require.NotNil(t, ds, "%s has no datasource", where)
				wantUID, ok := allowedDatasources[ds.Type]
				require.True(t, ok, "%s: datasource type %q is neither gapwatch's nor Prometheus", where, ds.Type)
				require.Equal(t, wantUID, ds.UID, "%s: datasource by variable", where)
				v := strings.Trim(strings.TrimPrefix(ds.UID, "$"), "{}")
				require.Equal(t, "datasource", vars[v], "%s: $%s is a datasource variable", where, v)
			}
			checkGapwatchQuery := func(where string, raw json.RawMessage) string {
				var q Query
				require.NoError(t, json.Unmarshal(raw, &q))
				// The plugin accepts the model (variables filled in as the frontend would).
				filled := varRef.ReplaceAll(raw, []byte("x"))
				_, err := ParseQuery(backend.DataQuery{JSON: filled})
				require.NoError(t, err, "%s: %s", where, raw)
				used[q.QueryType] = true
				checkVars(where, string(raw))
				return q.QueryType
			}

			require.NotEmpty(t, d.Panels)
			ids := map[int]bool{}
			for _, p := range allPanels(d.Panels) {
				if p.Type == "row" {
					continue
				}
				where := name + ": panel " + p.Title
				require.False(t, ids[p.ID], "%s: panel id %d twice", where, p.ID)
				ids[p.ID] = true
				checkVars(where+" title", p.Title)
				if p.Repeat != "" {
					require.Contains(t, vars, p.Repeat, where)
				}
				checkDS(where, p.Datasource)
				require.NotEmpty(t, p.Targets, where)
				var types []string
				for _, raw := range p.Targets {
					var tg target
					require.NoError(t, json.Unmarshal(raw, &tg))
					checkDS(where+" query "+tg.RefID, tg.Datasource)
					require.Equal(t, p.Datasource, tg.Datasource, "%s: the query's datasource is the panel's", where)
					if tg.Datasource.Type == ID {
						types = append(types, checkGapwatchQuery(where, raw))
					} else {
						require.Contains(t, tg.Expr, "gapwatch_", "%s: a gapwatch metric", where)
						checkVars(where, tg.Expr)
					}
				}
				// Fields named in transformations and overrides are fields of
				// the frames the panel's queries return.
				fieldRefs := regexp.MustCompile(`"(?:field|options|left|right|fields)":\s*"/?\^?([a-z_]+)`)
				var known []string
				for _, qt := range types {
					known = append(known, frameFields[qt]...)
				}
				if len(known) > 0 {
					text := string(slices.Concat(p.FieldConfig, p.Options))
					for _, tr := range p.Transformations {
						text += string(tr)
					}
					for _, m := range fieldRefs.FindAllStringSubmatch(text, -1) {
						if strings.Contains(m[1], "_") && !slices.Contains([]string{"received_events", "filled_late"}, m[1]) {
							require.Contains(t, known, m[1], "%s refers to field %s", where, m[1])
						}
					}
				}
			}
			for _, a := range d.Annotations.List {
				if a.Datasource == nil || a.Datasource.Type == "grafana" {
					continue
				}
				where := name + ": annotation " + a.Name
				checkDS(where, a.Datasource)
				qt := checkGapwatchQuery(where, a.Target)
				for k, m := range a.Mappings {
					require.Contains(t, frameFields[qt], m.Value, "%s: mapping %s", where, k)
				}
			}
		})
	}
	for _, qt := range QueryTypes {
		require.True(t, used[qt], "no dashboard uses query type %s", qt)
	}
}
