package plugin

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// The frontend's src/plugin.json (copied to dist/ by its build) declares what
// this backend is: CONTRACT.md "Grafana plugin".
func TestPluginJSON(t *testing.T) {
	b, err := os.ReadFile("../../src/plugin.json")
	if os.IsNotExist(err) {
		t.Skip("no src/plugin.json (the frontend is not in this checkout)")
	}
	require.NoError(t, err)
	var p struct {
		Type        string `json:"type"`
		ID          string `json:"id"`
		Backend     bool   `json:"backend"`
		Executable  string `json:"executable"`
		Alerting    bool   `json:"alerting"`
		Annotations bool   `json:"annotations"`
		Metrics     bool   `json:"metrics"`
	}
	require.NoError(t, json.Unmarshal(b, &p))
	require.Equal(t, "datasource", p.Type)
	require.Equal(t, ID, p.ID)
	require.True(t, p.Backend, "backend: true")
	require.Equal(t, "gpx_gapwatch", p.Executable, "make plugin builds gpx_gapwatch_linux_<arch>")
	require.True(t, p.Alerting, "alerting: true: alert rules use the backend's queries")
	require.True(t, p.Metrics, "metrics: true")
	if !p.Annotations {
		// The tenant dashboard's gap annotations need the frontend's
		// annotation support (plugin.json and DataSource.annotations).
		t.Log(`plugin.json has no "annotations": true: the tenant dashboard's gap annotations stay empty`)
	}
}
