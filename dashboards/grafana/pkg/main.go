// Command gpx_gapwatch is the backend of gapwatch's Grafana datasource plugin.
// Grafana starts it (plugin.json "executable": "gpx_gapwatch") and talks to it
// over gRPC; with -standalone it serves on the address in
// GF_PLUGIN_GRPC_ADDRESS_GAPWATCH_COVERAGE_DATASOURCE for a Grafana (or a test)
// to dial.
package main

import (
	"os"

	"github.com/grafana/grafana-plugin-sdk-go/backend/datasource"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	"github.com/gapwatch/gapwatch/dashboards/grafana/pkg/plugin"
)

func main() {
	if err := datasource.Manage(plugin.ID, plugin.NewDatasource, datasource.ManageOpts{}); err != nil {
		log.DefaultLogger.Error("serving the plugin", "err", err.Error())
		os.Exit(1)
	}
}
