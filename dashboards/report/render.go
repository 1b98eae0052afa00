package report

import (
	"bufio"
	_ "embed"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strconv"
)

// Formats are the output formats, for usage messages.
var Formats = []string{"csv", "json", "html"}

// Write writes r in format (csv, json or html).
func (r *Report) Write(w io.Writer, format string) error {
	switch format {
	case "csv":
		return r.WriteCSV(w)
	case "json":
		return r.WriteJSON(w)
	case "html":
		return r.WriteHTML(w)
	}
	return fmt.Errorf("unknown format %q (want csv, json or html)", format)
}

// CSVHeader is the CSV form's header: one row per hole follows.
var CSVHeader = []string{"tenant", "source", "kind", "started_at", "ended_at", "expected_events", "received_events", "missing_events", "filled_late"}

// WriteCSV writes one row per hole, under CSVHeader; ended_at is empty while
// the hole is open. Names are written as stored (quoted where CSV needs it).
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	for _, h := range r.Holes {
		ended := ""
		if h.EndedAt != nil {
			ended = *h.EndedAt
		}
		if err := cw.Write([]string{r.Tenant, h.Source, h.Kind, h.StartedAt, ended, u(h.Expected), u(h.Received), u(h.Missing), u(h.FilledLate)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSON writes r as indented JSON (the structure of the package comment).
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

//go:embed report.html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"percent": func(s *float64) string {
		if s == nil {
			return "—"
		}
		return strconv.FormatFloat(*s*100, 'f', 2, 64) + " %"
	},
	"ended": func(e *string) string {
		if e == nil {
			return "open"
		}
		return *e
	},
}).Parse(htmlSource))

// WriteHTML writes r as one self-contained page (no external assets),
// readable on screen and printable.
func (r *Report) WriteHTML(w io.Writer) error {
	bw := bufio.NewWriter(w)
	if err := htmlTemplate.Execute(bw, r); err != nil {
		return err
	}
	return bw.Flush()
}
