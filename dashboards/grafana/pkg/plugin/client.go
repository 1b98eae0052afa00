package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// Client reads gapwatch's HTTP API (CONTRACT.md "HTTP").
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// NewClient returns a client of the API at s.URL; hc does the requests.
func NewClient(s Settings, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(s.URL, "/"))
	if err != nil {
		return nil, fmt.Errorf("URL: %w", err)
	}
	return &Client{base: u, token: s.APIToken, http: hc}, nil
}

// APIError is a non-2xx answer of the API.
type APIError struct {
	Path    string // e.g. /api/v1/gaps
	Code    int    // HTTP status
	Message string // the API's {"error": ...}, or the start of the body
}

func (e *APIError) Error() string {
	switch e.Code {
	case http.StatusUnauthorized:
		return "gapwatch refused the API token (HTTP 401): set the datasource's API token to one listed in gapwatch's http.tokens"
	case http.StatusForbidden:
		return "the API token may not read this (HTTP 403): " + e.Message
	case http.StatusNotFound:
		return fmt.Sprintf("no gapwatch API here (HTTP 404 for %s): the URL must be the API's base URL, e.g. http://gapwatch:8080, on a gapwatch recent enough to serve %s", e.Path, e.Path)
	case http.StatusBadRequest:
		return "gapwatch rejected the query: " + e.Message
	}
	if e.Message == "" {
		return fmt.Sprintf("gapwatch answered HTTP %d for %s", e.Code, e.Path)
	}
	return fmt.Sprintf("gapwatch answered HTTP %d for %s: %s", e.Code, e.Path, e.Message)
}

// Status maps the API's answer to the status of a query's response.
func (e *APIError) Status() backend.Status {
	switch e.Code {
	case http.StatusUnauthorized:
		return backend.StatusUnauthorized
	case http.StatusForbidden:
		return backend.StatusForbidden
	case http.StatusNotFound:
		return backend.StatusNotFound
	case http.StatusBadRequest:
		return backend.StatusBadRequest
	case http.StatusTooManyRequests:
		return backend.StatusTooManyRequests
	}
	return backend.StatusBadGateway
}

// The API's paging headers (dashboards/api): a listing cut at its limit
// carries both.
const (
	truncatedHeader  = "X-Gapwatch-Truncated"
	nextCursorHeader = "X-Gapwatch-Next-Cursor"
)

// get GETs path?query and decodes the JSON answer into out. Errors are
// readable, marked downstream when gapwatch or the network is at fault, and
// never contain the token.
func (c *Client) get(ctx context.Context, path string, query url.Values, out any) error {
	_, err := c.getPage(ctx, path, query, out)
	return err
}

// getPage is get that also returns the answer's headers.
func (c *Client) getPage(ctx context.Context, path string, query url.Values, out any) (http.Header, error) {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, backend.PluginError(fmt.Errorf("building the request for %s: %w", path, err))
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, backend.DownstreamError(c.transportError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		e := &APIError{Path: path, Code: resp.StatusCode, Message: apiMessage(body)}
		return nil, backend.NewErrorWithSource(e, backend.ErrorSourceFromHTTPStatus(resp.StatusCode))
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return nil, backend.DownstreamError(fmt.Errorf("%s%s does not answer like gapwatch (reading the JSON: %v): is the URL gapwatch's API?", c.base.Redacted(), path, err))
	}
	return resp.Header, nil
}

// transportError says what could not be reached and what to check.
func (c *Client) transportError(err error) error {
	where := c.base.Redacted()
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("request to gapwatch at %s cancelled", where)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fmt.Errorf("gapwatch at %s did not answer in time: %w", where, unwrapURL(err))
	case errors.As(err, &dnsErr):
		return fmt.Errorf("cannot resolve the host of %s (%v): check the URL", where, dnsErr)
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return fmt.Errorf("cannot connect to gapwatch at %s (%v): check the URL and that gapwatch runs with the api role", where, opErr.Err)
	}
	return fmt.Errorf("requesting gapwatch at %s: %w", where, unwrapURL(err))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// unwrapURL drops url.Error's method and URL, which the message already says.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// apiMessage is the API's {"error": "..."}, else the body's first line.
func apiMessage(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	if len(line) > 200 {
		line = line[:200] + "…"
	}
	return line
}

// TenantSources is one entry of GET /api/v1/tenants.
type TenantSources struct {
	Tenant  string   `json:"tenant"`
	Sources []string `json:"sources"`
}

// Tenants lists the tenants the token may see, with their sources.
func (c *Client) Tenants(ctx context.Context) ([]TenantSources, error) {
	var out []TenantSources
	return out, c.get(ctx, "/api/v1/tenants", nil, &out)
}

// Status is GET /api/v1/status.
type Status struct {
	Version    string     `json:"version"`
	Roles      []string   `json:"roles"`
	Watermark  *time.Time `json:"watermark"`
	LagSeconds *float64   `json:"lag_seconds"`
	// WatermarkUnknown says why the watermark is null.
	WatermarkUnknown string `json:"watermark_unknown"`
}

// Status reads the API's version and how far detection trails.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var out Status
	return out, c.get(ctx, "/api/v1/status", nil, &out)
}

// Gap is one entry of GET /api/v1/gaps.
type Gap struct {
	ID         string     `json:"id"`
	Tenant     string     `json:"tenant"`
	Source     string     `json:"source"`
	Kind       string     `json:"kind"`
	StartedAt  time.Time  `json:"started_at"`
	DetectedAt time.Time  `json:"detected_at"`
	EndedAt    *time.Time `json:"ended_at"`
	Expected   float64    `json:"expected_events"`
	Observed   float64    `json:"observed_events"`
	Missing    float64    `json:"missing_events"`
}

// GapQuery selects gaps; empty fields are not sent.
type GapQuery struct {
	Tenant, Source, State string
	From, To              time.Time
}

// maxGapPages bounds the pages of one gap listing (the API pages at 10 000).
const maxGapPages = 10

// Gaps lists the gaps overlapping [From, To), following the API's pages up
// to maxGapPages; more says that even more exist.
func (c *Client) Gaps(ctx context.Context, q GapQuery) (gaps []Gap, more bool, err error) {
	v := url.Values{}
	setNonEmpty(v, "tenant", q.Tenant)
	setNonEmpty(v, "source", q.Source)
	setNonEmpty(v, "state", q.State)
	setTime(v, "from", q.From)
	setTime(v, "to", q.To)
	for range maxGapPages {
		var page []Gap
		h, err := c.getPage(ctx, "/api/v1/gaps", v, &page)
		if err != nil {
			return nil, false, err
		}
		gaps = append(gaps, page...)
		next := h.Get(nextCursorHeader)
		if h.Get(truncatedHeader) == "" || next == "" {
			return gaps, false, nil
		}
		v.Set("cursor", next)
	}
	return gaps, true, nil
}

// RatePoint is one step of GET /api/v1/rates; the band is nil where the
// stream had no baseline.
type RatePoint struct {
	T        time.Time `json:"t"`
	Events   float64   `json:"events"`
	Expected *float64  `json:"expected"`
	Lower    *float64  `json:"lower"`
	Upper    *float64  `json:"upper"`
}

// Rates is GET /api/v1/rates.
type Rates struct {
	Tenant string      `json:"tenant"`
	Source string      `json:"source"`
	Step   int64       `json:"step"`
	Clock  string      `json:"clock"`
	Points []RatePoint `json:"points"`
}

// Window is a range and step of a rates or coverage request.
type Window struct {
	From, To time.Time
	Step     time.Duration
}

func (w Window) values() url.Values {
	v := url.Values{}
	setTime(v, "from", w.From)
	setTime(v, "to", w.To)
	v.Set("step", w.Step.String())
	return v
}

// ExplainBucket is one judged bucket of GET /api/v1/explain; a number the
// API sends as null (a silence run's log probability that underflowed) is
// nil.
type ExplainBucket struct {
	Bucket           time.Time `json:"bucket"`
	Observed         float64   `json:"observed"`
	Expected         *float64  `json:"expected"`
	Judged           *float64  `json:"judged"`
	State            string    `json:"state"`
	SilenceRun       int       `json:"silence_run"`
	SilenceLogP      *float64  `json:"silence_logp"`
	SilenceThreshold *float64  `json:"silence_threshold"`
	Drop50           *float64  `json:"drop50"`
	Drop75           *float64  `json:"drop75"`
	Rank             *float64  `json:"rank"`
	DropThreshold    *float64  `json:"drop_threshold"`
	Late             *float64  `json:"late"`
	LateThreshold    *float64  `json:"late_threshold"`
}

// ExplainOpening is a gap the replay opened.
type ExplainOpening struct {
	Kind       string    `json:"kind"`
	StartedAt  time.Time `json:"started_at"`
	DetectedAt time.Time `json:"detected_at"`
	Expected   float64   `json:"expected_events"`
	Missing    float64   `json:"missing_events"`
}

// Explanation is GET /api/v1/explain: one stream's stored counts replayed
// through the detector over a period.
type Explanation struct {
	Tenant       string           `json:"tenant"`
	Source       string           `json:"source"`
	ReplayedFrom time.Time        `json:"replayed_from"`
	Buckets      []ExplainBucket  `json:"buckets"`
	Opened       []ExplainOpening `json:"opened"`
}

// Explain replays one stream over [from, to) (both on the bucket grid, to
// by the ingest watermark).
func (c *Client) Explain(ctx context.Context, tenant, source string, from, to time.Time) (Explanation, error) {
	v := url.Values{}
	v.Set("tenant", tenant)
	v.Set("source", source)
	setTime(v, "from", from)
	setTime(v, "to", to)
	var out Explanation
	return out, c.get(ctx, "/api/v1/explain", v, &out)
}

// Rates reads one stream's events per step on clock, with the expected band.
func (c *Client) Rates(ctx context.Context, tenant, source, clock string, w Window) (Rates, error) {
	v := w.values()
	v.Set("tenant", tenant)
	v.Set("source", source)
	setNonEmpty(v, "clock", clock)
	var out Rates
	return out, c.get(ctx, "/api/v1/rates", v, &out)
}

// CoveragePoint is one step of one stream; Share is nil without a baseline.
type CoveragePoint struct {
	T     time.Time `json:"t"`
	Share *float64  `json:"share"`
}

// CoverageStream is one source of a coverage answer.
type CoverageStream struct {
	Source string          `json:"source"`
	Points []CoveragePoint `json:"points"`
}

// Coverage is GET /api/v1/coverage.
type Coverage struct {
	Tenant  string           `json:"tenant"`
	Step    int64            `json:"step"`
	Streams []CoverageStream `json:"streams"`
}

// Coverage reads the share of expected events received per source and step.
func (c *Client) Coverage(ctx context.Context, tenant string, w Window) (Coverage, error) {
	v := w.values()
	v.Set("tenant", tenant)
	var out Coverage
	return out, c.get(ctx, "/api/v1/coverage", v, &out)
}

// Stream is one entry of GET /api/v1/streams.
type Stream struct {
	Tenant       string     `json:"tenant"`
	Source       string     `json:"source"`
	Status       string     `json:"status"`
	LastSeen     *time.Time `json:"last_seen"`
	EventsPerMin float64    `json:"events_per_min"`
	Profile      string     `json:"profile"` // what its expectation follows: short-term, hourly, weekly
	Weekend      string     `json:"weekend"` // how its possible weekends are judged
}

// Streams lists the detector's streams (of tenant and source when given).
func (c *Client) Streams(ctx context.Context, tenant, source string) ([]Stream, error) {
	v := url.Values{}
	setNonEmpty(v, "tenant", tenant)
	setNonEmpty(v, "source", source)
	var out []Stream
	return out, c.get(ctx, "/api/v1/streams", v, &out)
}

func setNonEmpty(v url.Values, k, s string) {
	if s != "" {
		v.Set(k, s)
	}
}

func setTime(v url.Values, k string, t time.Time) {
	if !t.IsZero() {
		v.Set(k, t.UTC().Format(time.RFC3339))
	}
}
