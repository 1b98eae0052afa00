package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// The query types (the query model's queryType).
const (
	QueryGaps     = "gaps"
	QueryCoverage = "coverage"
	QueryRates    = "rates"
	QueryStreams  = "streams"
	QueryExplain  = "explain"
)

// QueryTypes lists every query type.
var QueryTypes = []string{QueryGaps, QueryCoverage, QueryRates, QueryStreams, QueryExplain}

// Query is the query model the frontend and alert rules send.
type Query struct {
	QueryType string `json:"queryType"`
	Tenant    string `json:"tenant"` // empty: every tenant the token may see
	Source    string `json:"source"` // empty: every source
	State     string `json:"state"`  // gaps: open, resolved or all (default)
	Clock     string `json:"clock"`  // rates: arrival (default) or event
}

// maxRateStreams bounds the streams one rates query may fan out to.
const maxRateStreams = 500

// fanOut is how many API requests one query runs at once.
const fanOut = 8

// errBadQuery marks a query model that can never be answered.
var errBadQuery = errors.New("bad query")

// ParseQuery reads q's model; the query type comes from q.QueryType, else the
// JSON.
func ParseQuery(q backend.DataQuery) (Query, error) {
	var m Query
	if len(q.JSON) > 0 {
		if err := json.Unmarshal(q.JSON, &m); err != nil {
			return m, fmt.Errorf("%w: reading the query: %v", errBadQuery, err)
		}
	}
	if q.QueryType != "" {
		m.QueryType = q.QueryType
	}
	if !slices.Contains(QueryTypes, m.QueryType) {
		return m, fmt.Errorf("%w: queryType %q: want one of %v", errBadQuery, m.QueryType, QueryTypes)
	}
	switch m.State {
	case "", "all", "open", "resolved":
	default:
		return m, fmt.Errorf("%w: state %q: want open, resolved or all", errBadQuery, m.State)
	}
	switch m.Clock {
	case "", "arrival", "event":
	default:
		return m, fmt.Errorf("%w: clock %q: want arrival or event", errBadQuery, m.Clock)
	}
	if m.QueryType == QueryExplain && (m.Tenant == "" || m.Source == "") {
		return m, fmt.Errorf("%w: an explain query replays one stream: it needs a tenant and a source", errBadQuery)
	}
	if m.QueryType == QueryRates && m.Source != "" && m.Tenant == "" {
		return m, fmt.Errorf("%w: a rates query for source %q needs its tenant", errBadQuery, m.Source)
	}
	return m, nil
}

// QueryData answers each query on its own: one failing query is an error for
// its RefID only.
func (d *Datasource) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	resp := backend.NewQueryDataResponse()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, q := range req.Queries {
		wg.Go(func() {
			r := d.query(ctx, q)
			mu.Lock()
			resp.Responses[q.RefID] = r
			mu.Unlock()
		})
	}
	wg.Wait()
	return resp, nil
}

func (d *Datasource) query(ctx context.Context, q backend.DataQuery) backend.DataResponse {
	if d.settingsErr != nil {
		return backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream,
			"datasource settings: "+d.settingsErr.Error())
	}
	m, err := ParseQuery(q)
	if err != nil {
		return errorResponse(err)
	}
	var frames data.Frames
	switch m.QueryType {
	case QueryGaps:
		frames, err = d.gaps(ctx, m, q.TimeRange)
	case QueryCoverage:
		frames, err = d.coverage(ctx, m, q.TimeRange, q.Interval)
	case QueryRates:
		frames, err = d.rates(ctx, m, q.TimeRange, q.Interval)
	case QueryStreams:
		frames, err = d.streams(ctx, m)
	case QueryExplain:
		frames, err = d.explain(ctx, m, q.TimeRange)
	}
	if err != nil {
		backend.Logger.FromContext(ctx).Warn("query failed", "refId", q.RefID, "queryType", m.QueryType, "err", err.Error())
		return errorResponse(err)
	}
	for _, f := range frames {
		f.RefID = q.RefID
	}
	return backend.DataResponse{Frames: frames}
}

// errorResponse is err as a query's response: the API's status and the
// error's source (downstream for gapwatch, the network and bad query models;
// plugin otherwise).
func errorResponse(err error) backend.DataResponse {
	status := backend.StatusInternal
	src := backend.ErrorSourcePlugin
	var ae *APIError
	switch {
	case errors.As(err, &ae):
		status, src = ae.Status(), backend.ErrorSourceFromHTTPStatus(ae.Code)
	case errors.Is(err, errBadQuery), errors.Is(err, errEmptyRange):
		status, src = backend.StatusBadRequest, backend.ErrorSourceDownstream
	case backend.IsDownstreamHTTPError(err):
		status, src = backend.StatusBadGateway, backend.ErrorSourceDownstream
	}
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		status = backend.StatusTimeout
	}
	return backend.ErrDataResponseWithSource(status, src, err.Error())
}

func (d *Datasource) bucket() time.Duration { return time.Duration(d.settings.Bucket) }

// gaps lists the gaps overlapping the range.
func (d *Datasource) gaps(ctx context.Context, m Query, tr backend.TimeRange) (data.Frames, error) {
	if !tr.From.Before(tr.To) {
		return nil, errEmptyRange
	}
	list, more, err := d.client.Gaps(ctx, GapQuery{Tenant: m.Tenant, Source: m.Source, State: m.State, From: tr.From, To: tr.To})
	if err != nil {
		return nil, err
	}
	f := gapsFrame(list)
	if more {
		f.AppendNotices(data.Notice{Severity: data.NoticeSeverityWarning,
			Text: fmt.Sprintf("more than %d gaps: showing the first; narrow the time range, tenant or source", len(list))})
	}
	return data.Frames{f}, nil
}

// streams lists the detector's streams.
func (d *Datasource) streams(ctx context.Context, m Query) (data.Frames, error) {
	list, err := d.client.Streams(ctx, m.Tenant, m.Source)
	if err != nil {
		return nil, err
	}
	return data.Frames{streamsFrame(list)}, nil
}

// explain replays one stream over the time range laid on the bucket grid
// (its start rounded down, its end rounded down and held to the ingest
// watermark when the API knows it: counts not stored yet would read as
// empty, and the API refuses such a period).
func (d *Datasource) explain(ctx context.Context, m Query, tr backend.TimeRange) (data.Frames, error) {
	b := d.bucket() // whole seconds (Settings.Validate)
	from, to := floorTo(tr.From, b), floorTo(tr.To, b)
	st, err := d.client.Status(ctx)
	if err != nil {
		return nil, err
	}
	if st.Watermark != nil {
		wm := floorTo(*st.Watermark, b)
		if !from.Before(wm) {
			return nil, fmt.Errorf("%w: no whole bucket of the time range is before the ingest watermark %s", errBadQuery,
				st.Watermark.UTC().Format(time.RFC3339))
		}
		to = minTime(to, wm)
	}
	if !from.Before(to) {
		return nil, fmt.Errorf("%w: the time range holds no whole bucket of %s", errBadQuery, b)
	}
	x, err := d.client.Explain(ctx, m.Tenant, m.Source, from, to)
	if err != nil {
		return nil, err
	}
	return data.Frames{explainFrame(m.Tenant, m.Source, x)}, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// selected is the tenants (with their sources) that m covers: the one it
// names (the API answers 403 for one the token may not read) or every
// tenant the token may see.
func (d *Datasource) selected(ctx context.Context, m Query) ([]TenantSources, error) {
	list, err := d.client.Tenants(ctx)
	if err != nil {
		return nil, err
	}
	if m.Tenant == "" {
		return list, nil
	}
	for _, t := range list {
		if t.Tenant == m.Tenant {
			return []TenantSources{t}, nil
		}
	}
	return []TenantSources{{Tenant: m.Tenant}}, nil
}

// coverage reads the share of expected events received per source and step,
// for one tenant or all, on one grid (one wide frame).
func (d *Datasource) coverage(ctx context.Context, m Query, tr backend.TimeRange, interval time.Duration) (data.Frames, error) {
	tenants, err := d.selected(ctx, m)
	if err != nil {
		return nil, err
	}
	// The API caps each tenant's answer at sources × steps: the step fits
	// the largest tenant, so every tenant shares one grid.
	widest := 1
	for _, t := range tenants {
		widest = max(widest, len(t.Sources))
	}
	w, err := window(tr, interval, d.bucket(), min(maxRatePoints, maxCoverageCells/widest))
	if err != nil {
		return nil, err
	}
	answers := make([]Coverage, len(tenants))
	err = forEach(ctx, len(tenants), func(ctx context.Context, i int) error {
		c, err := d.client.Coverage(ctx, tenants[i].Tenant, w)
		answers[i] = c
		if err != nil {
			return fmt.Errorf("coverage of tenant %q: %w", tenants[i].Tenant, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range answers {
		answers[i].Tenant = tenants[i].Tenant
		if m.Source != "" {
			answers[i].Streams = slices.DeleteFunc(answers[i].Streams, func(s CoverageStream) bool { return s.Source != m.Source })
		}
	}
	return data.Frames{coverageFrame(w, answers)}, nil
}

// rates reads each selected stream's events per step with the expected band:
// one frame per stream.
func (d *Datasource) rates(ctx context.Context, m Query, tr backend.TimeRange, interval time.Duration) (data.Frames, error) {
	type stream struct{ tenant, source string }
	var list []stream
	if m.Tenant != "" && m.Source != "" {
		list = []stream{{m.Tenant, m.Source}}
	} else {
		tenants, err := d.selected(ctx, m)
		if err != nil {
			return nil, err
		}
		for _, t := range tenants {
			for _, s := range t.Sources {
				list = append(list, stream{t.Tenant, s})
			}
		}
	}
	if len(list) > maxRateStreams {
		return nil, fmt.Errorf("%w: %d streams in one rates query, at most %d: choose a tenant or a source", errBadQuery, len(list), maxRateStreams)
	}
	w, err := window(tr, interval, d.bucket(), maxRatePoints)
	if err != nil {
		return nil, err
	}
	frames := make(data.Frames, len(list))
	err = forEach(ctx, len(list), func(ctx context.Context, i int) error {
		r, err := d.client.Rates(ctx, list[i].tenant, list[i].source, m.Clock, w)
		if err != nil {
			return fmt.Errorf("rates of %s/%s: %w", list[i].tenant, list[i].source, err)
		}
		frames[i] = ratesFrame(list[i].tenant, list[i].source, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return frames, nil
}

// forEach runs fn for 0..n-1, fanOut at a time, and returns the first error
// (cancelling the others).
func forEach(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, fanOut)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err; cancel(err) })
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
