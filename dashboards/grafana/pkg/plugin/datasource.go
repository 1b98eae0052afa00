// Package plugin is the backend of gapwatch's Grafana datasource: it answers
// Grafana's queries (gaps, coverage, rates, streams), resources (tenants and
// their sources) and health checks from gapwatch's HTTP API. Queries run in
// the backend, so Grafana alert rules can use them.
package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/httpclient"
	"github.com/grafana/grafana-plugin-sdk-go/backend/instancemgmt"
	"github.com/grafana/grafana-plugin-sdk-go/backend/resource/httpadapter"
)

// ID is the plugin's id in plugin.json.
const ID = "gapwatch-coverage-datasource"

// Datasource is one configured gapwatch datasource: Grafana makes one per
// datasource settings (and a new one when they change).
type Datasource struct {
	settings Settings
	// settingsErr is why the settings cannot work; every call answers it
	// readably instead of failing the instance (a gRPC error is no answer).
	settingsErr error
	client      *Client
	resources   backend.CallResourceHandler
	// now is the clock, replaced in tests.
	now func() time.Time
}

var (
	_ backend.QueryDataHandler      = (*Datasource)(nil)
	_ backend.CheckHealthHandler    = (*Datasource)(nil)
	_ backend.CallResourceHandler   = (*Datasource)(nil)
	_ instancemgmt.InstanceDisposer = (*Datasource)(nil)
)

// NewDatasource is the instance factory datasource.Manage calls.
func NewDatasource(ctx context.Context, s backend.DataSourceInstanceSettings) (instancemgmt.Instance, error) {
	d := &Datasource{now: time.Now}
	d.resources = httpadapter.New(d.resourceMux())
	d.settings, d.settingsErr = LoadSettings(s)
	if d.settingsErr != nil {
		return d, nil
	}
	if len(s.JSONData) == 0 {
		s.JSONData = []byte("{}") // the SDK's HTTP settings parser wants an object
	}
	opts, err := s.HTTPClientOptions(ctx)
	if err != nil {
		d.settingsErr = fmt.Errorf("HTTP client settings: %w", err)
		return d, nil
	}
	if opts.Timeouts.Timeout == 0 || opts.Timeouts.Timeout == httpclient.DefaultTimeoutOptions.Timeout {
		opts.Timeouts.Timeout = time.Minute // a week of coverage for a large tenant takes a while
	}
	hc, err := httpclient.New(opts)
	if err != nil {
		d.settingsErr = fmt.Errorf("HTTP client: %w", err)
		return d, nil
	}
	d.client, d.settingsErr = NewClient(d.settings, hc)
	return d, nil
}

// Dispose drops the instance's idle connections when its settings change.
func (d *Datasource) Dispose() {
	if d.client != nil {
		d.client.http.CloseIdleConnections()
	}
}

// CheckHealth is OK when the API answers, with its version and how far
// detection trails; ERROR with the reason otherwise.
func (d *Datasource) CheckHealth(ctx context.Context, _ *backend.CheckHealthRequest) (*backend.CheckHealthResult, error) {
	fail := func(err error) (*backend.CheckHealthResult, error) {
		backend.Logger.FromContext(ctx).Warn("health check failed", "err", err.Error())
		return &backend.CheckHealthResult{Status: backend.HealthStatusError, Message: err.Error()}, nil
	}
	if d.settingsErr != nil {
		return fail(d.settingsErr)
	}
	st, err := d.client.Status(ctx)
	if err != nil {
		return fail(err)
	}
	tenants, err := d.client.Tenants(ctx)
	if err != nil {
		return fail(fmt.Errorf("gapwatch %s answers, but listing tenants failed: %w", st.Version, err))
	}
	return &backend.CheckHealthResult{Status: backend.HealthStatusOk, Message: healthMessage(st, len(tenants), d.now())}, nil
}

// healthMessage says which gapwatch answered and how far its watermark trails.
func healthMessage(st Status, tenants int, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "gapwatch %s answers", orUnknown(st.Version))
	if len(st.Roles) > 0 {
		fmt.Fprintf(&b, " (roles %s)", strings.Join(st.Roles, ", "))
	}
	switch {
	case st.Watermark == nil && st.WatermarkUnknown != "":
		fmt.Fprintf(&b, "; watermark unknown: %s", st.WatermarkUnknown)
	case st.Watermark == nil:
		b.WriteString("; watermark unknown: nothing ingested yet")
	default:
		lag := now.Sub(*st.Watermark)
		if st.LagSeconds != nil {
			lag = time.Duration(*st.LagSeconds * float64(time.Second))
		}
		fmt.Fprintf(&b, "; watermark %s, %s behind", st.Watermark.UTC().Format(time.RFC3339), lag.Round(time.Second))
	}
	fmt.Fprintf(&b, "; %d tenant(s) visible to this token", tenants)
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "(version unknown)"
	}
	return s
}

// CallResource serves the query editor's lists: GET tenants and GET
// sources?tenant=T.
func (d *Datasource) CallResource(ctx context.Context, req *backend.CallResourceRequest, sender backend.CallResourceResponseSender) error {
	return d.resources.CallResource(ctx, req, sender)
}

func (d *Datasource) resourceMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /tenants", func(w http.ResponseWriter, r *http.Request) {
		list, ok := d.tenantList(w, r)
		if !ok {
			return
		}
		names := make([]string, 0, len(list))
		for _, t := range list {
			names = append(names, t.Tenant)
		}
		writeJSON(w, http.StatusOK, names)
	})
	mux.HandleFunc("GET /sources", func(w http.ResponseWriter, r *http.Request) {
		tenant := r.URL.Query().Get("tenant")
		if tenant == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "tenant is required: sources?tenant=T"})
			return
		}
		list, ok := d.tenantList(w, r)
		if !ok {
			return
		}
		sources := []string{}
		for _, t := range list {
			if t.Tenant == tenant {
				sources = append(sources, t.Sources...)
			}
		}
		writeJSON(w, http.StatusOK, sources)
	})
	return mux
}

// tenantList reads /api/v1/tenants, answering the error itself when it fails.
func (d *Datasource) tenantList(w http.ResponseWriter, r *http.Request) ([]TenantSources, bool) {
	if d.settingsErr != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": d.settingsErr.Error()})
		return nil, false
	}
	list, err := d.client.Tenants(r.Context())
	if err != nil {
		backend.Logger.FromContext(r.Context()).Warn("listing tenants failed", "err", err.Error())
		code := http.StatusBadGateway
		var ae *APIError
		if errors.As(err, &ae) && ae.Code/100 == 4 {
			code = ae.Code
		}
		writeJSON(w, code, map[string]string{"error": err.Error()})
		return nil, false
	}
	return list, true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
