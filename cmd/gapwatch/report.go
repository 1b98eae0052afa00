package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gapwatch/gapwatch/dashboards/report"
	"github.com/gapwatch/gapwatch/storage/chstore"
)

// cmdReport writes a tenant's coverage report over a period, read from
// ClickHouse per the configuration or from a running gapwatch API (--api).
func cmdReport(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	tenant := fs.String("tenant", "", "tenant to report on (required)")
	from := fs.String("from", "", "start of the period, inclusive: RFC 3339 or YYYY-MM-DD (UTC) (required)")
	to := fs.String("to", "", "end of the period, exclusive: RFC 3339 or YYYY-MM-DD (UTC) (required)")
	format := fs.String("format", "csv", "csv (one row per hole), json or html")
	apiURL := fs.String("api", "", "read through this gapwatch API (e.g. http://127.0.0.1:8080) instead of ClickHouse; a token in GAPWATCH_API_TOKEN is sent")
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	if !slices.Contains(report.Formats, *format) {
		return usagef("--format %q: want csv, json or html", *format)
	}
	q := report.Query{Tenant: *tenant, Bucket: cfg.Bucket}
	if q.Tenant == "" {
		return usagef("--tenant is required")
	}
	if q.From, err = parseReportTime("from", *from); err != nil {
		return err
	}
	if q.To, err = parseReportTime("to", *to); err != nil {
		return err
	}
	if err := q.Validate(); err != nil {
		return usageError{err}
	}
	var r *report.Report
	if *apiURL != "" {
		r, err = fetchReport(ctx, *apiURL, os.Getenv("GAPWATCH_API_TOKEN"), q)
	} else {
		r, err = storeReport(ctx, cfg.Store, cfg.ClickHouse, q)
	}
	if err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	if err := r.Write(w, *format); err != nil {
		return err
	}
	return w.Flush()
}

// parseReportTime reads an RFC 3339 time or a date (midnight UTC).
func parseReportTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, usagef("--%s is required", name)
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, usagef("--%s %q: want RFC 3339 (2026-11-20T10:00:00Z) or a date (2026-11-20)", name, s)
}

// storeReport builds the report from ClickHouse.
func storeReport(ctx context.Context, kind string, cfg chstore.Config, q report.Query) (*report.Report, error) {
	if kind == "memory" {
		return nil, usagef("the memory store lives inside its process: use --api with that process's address (e.g. the demo's)")
	}
	st, err := chstore.Open(ctx, cfg, newLogger())
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := st.CheckSchema(ctx); err != nil {
		return nil, err
	}
	return report.Build(ctx, st, q)
}

// fetchReport reads the report from a gapwatch API's /api/v1/report.
func fetchReport(ctx context.Context, base, token string, q report.Query) (*report.Report, error) {
	var r report.Report
	v := url.Values{"tenant": {q.Tenant}, "from": {q.From.Format(time.RFC3339)}, "to": {q.To.Format(time.RFC3339)}}
	// As the API's report timeout.
	if err := apiGet(ctx, base, "/api/v1/report", v, token, 10*time.Minute, "the report", &r); err != nil {
		return nil, err
	}
	if r.Tenant != q.Tenant {
		return nil, errors.New("the API answered a report of another tenant")
	}
	return &r, nil
}

// apiGet reads path?v from the gapwatch API at base (a bearer token sent if
// not empty) as JSON into out, what naming the answer in errors. A 400 or
// 404 answer is bad usage (exit 2), with the API's reason.
func apiGet(ctx context.Context, base, path string, v url.Values, token string, timeout time.Duration, what string, out any) error {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("--api %q: want an http(s) URL such as http://127.0.0.1:8080", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = v.Encode()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("asking %s: %w", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return fmt.Errorf("reading %s from %s: %w", what, base, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		err := fmt.Errorf("%s answered %s: %s", base, resp.Status, firstLine(msg))
		if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusNotFound {
			return usageError{err}
		}
		return err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("reading %s from %s: %w", what, base, err)
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
