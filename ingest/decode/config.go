package decode

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Reason is why a message or one record of it was rejected; it is the value of the
// `reason` label of gapwatch_ingest_rejected_total and of the DLQ header.
type Reason string

// Rejection reasons of the decoder.
const (
	ReasonOversized       Reason = "oversized"        // message larger than FieldConfig.MaxMessageBytes
	ReasonInvalidUTF8     Reason = "invalid_utf8"     // message is not valid UTF-8
	ReasonInvalidJSON     Reason = "invalid_json"     // message is not one RFC 8259 JSON value
	ReasonNotObject       Reason = "not_object"       // valid JSON but not an object (or an envelope record that is not an object)
	ReasonEmptyEnvelope   Reason = "empty_envelope"   // records/Records array with no element, resourceLogs with no log record
	ReasonMissingEnvelope Reason = "missing_envelope" // the topic's format names an envelope the message does not have
	ReasonBadSyslog       Reason = "bad_syslog"       // a syslog line whose header does not parse (PRI, time, HOSTNAME, TAG)
	ReasonBadCEF          Reason = "bad_cef"          // a CEF line without its 7 header fields
	ReasonMissingTenant   Reason = "missing_tenant"   // no tenant field present
	ReasonMissingSource   Reason = "missing_source"   // no source field present
	ReasonMissingTime     Reason = "missing_time"     // no time field present
	ReasonBadTime         Reason = "bad_time"         // time present but not a form we accept
	ReasonBadTenant       Reason = "bad_tenant"       // empty string, longer than MaxNameBytes, or containing control characters (< 0x20, 0x7f, C1)
	ReasonBadSource       Reason = "bad_source"       // same rules
)

// Format selects how a topic's messages are laid out.
type Format string

// Message layouts.
const (
	FormatAuto   Format = "auto"   // default: every envelope below recognised by its keys (and Azure `records`, CloudTrail `Records`), else plain JSON event
	FormatJSON   Format = "json"   // one plain JSON event per message, envelopes not looked for
	FormatECS    Format = "ecs"    // Elastic Common Schema event
	FormatOCSF   Format = "ocsf"   // OCSF event
	FormatGCP    Format = "gcp"    // Google Cloud Logging LogEntry
	FormatHEC    Format = "hec"    // Splunk HEC event
	FormatOTLP   Format = "otlp"   // OTLP/JSON logs (resourceLogs)
	FormatSyslog Format = "syslog" // syslog lines: RFC 5424, RFC 3164, rsyslog/syslog-ng's PRI-less RFC 3339 lines (CEF after a header too)
	FormatCEF    Format = "cef"    // CEF lines, bare or after a syslog header
)

// formats are the valid Format values.
var formats = []Format{FormatAuto, FormatJSON, FormatECS, FormatOCSF, FormatGCP, FormatHEC, FormatOTLP, FormatSyslog, FormatCEF}

const (
	defaultMaxMessageBytes = 1 << 20
	defaultMaxNameBytes    = 256

	// maxDetail caps the length of a rejection detail, in bytes.
	maxDetail = 256
	// maxExcerpt caps how many bytes of input a detail quotes.
	maxExcerpt = 64
	// maxDepth is the deepest nesting of arrays and objects accepted.
	maxDepth = 256
)

var (
	defaultTenantPaths = []string{"tenant", "tenantId", "tenant_id", "TenantId"}
	defaultSourcePaths = []string{"source", "category", "log_type", "Type"}
	defaultTimePaths   = []string{"time", "@timestamp", "timestamp", "TimeGenerated"}
)

// cloudTrailSource is the source of CloudTrail records without FixedSource.
const cloudTrailSource = "aws.cloudtrail"

// FieldConfig says where a topic's events keep tenant, source and event time.
// Zero values mean the defaults documented on each field.
//
// A path is a dotted list of object keys walked from the record
// ("userIdentity.accountId"); if the walk finds nothing, the whole path is
// also tried as one literal key of the record, for producers that flatten
// nested names ({"cloud.account.id": "…"}). Arrays are not walked. A field is
// present when its key exists with a non-null value; with duplicate keys the
// first occurrence counts.
type FieldConfig struct {
	Format      Format   `yaml:"format"`       // default FormatAuto
	Tenant      []string `yaml:"tenant"`       // dotted paths, first present wins; default: tenant, tenantId, tenant_id, TenantId
	Source      []string `yaml:"source"`       // default: source, category, log_type, Type
	Time        []string `yaml:"time"`         // default: time, @timestamp, timestamp, TimeGenerated
	FixedSource string   `yaml:"fixed_source"` // if set, every plain event (and CloudTrail record) of this topic has this source (paths ignored)
	// TimeLayouts are Go time layouts (e.g. "01/02/2006 15:04:05") tried, in
	// order, for a time string none of the built-in forms reads: the way to
	// accept a producer's day- or month-first dates, which are ambiguous and
	// rejected otherwise. A layout without a zone reads UTC. Default none.
	TimeLayouts []string `yaml:"time_layouts"`
	// FixedTenant, if set, is every record's tenant (tenant paths ignored).
	FixedTenant string `yaml:"fixed_tenant"`
	// TenantPattern and SourcePattern are RE2 expressions the resolved tenant
	// (source) must match; the first capture group, if any, becomes the name
	// ("^([a-z0-9]+)-" makes "acme-fw-01" the tenant "acme"). A name that does
	// not match is rejected. Default none.
	TenantPattern   string `yaml:"tenant_pattern"`
	SourcePattern   string `yaml:"source_pattern"`
	MaxMessageBytes int    `yaml:"max_message_bytes"` // default 1 MiB (1<<20)
	MaxNameBytes    int    `yaml:"max_name_bytes"`    // default 256: longest tenant or source accepted
}

// WithDefaults returns c with every zero field set to its documented default.
// The path slices it fills in are fresh copies.
func (c FieldConfig) WithDefaults() FieldConfig {
	if c.Format == "" {
		c.Format = FormatAuto
	}
	if len(c.Tenant) == 0 {
		c.Tenant = slices.Clone(defaultTenantPaths)
	}
	if len(c.Source) == 0 {
		c.Source = slices.Clone(defaultSourcePaths)
	}
	if len(c.Time) == 0 {
		c.Time = slices.Clone(defaultTimePaths)
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = defaultMaxMessageBytes
	}
	if c.MaxNameBytes == 0 {
		c.MaxNameBytes = defaultMaxNameBytes
	}
	return c
}

// Validate reports the first problem of c as an error starting with
// "ingest: fields: ": an unknown format, an empty path or path element, a
// negative size, or a FixedSource that no record could carry (too long, not
// UTF-8, or with control characters). Zero values are valid (they mean the
// defaults), so Validate may be called before or after WithDefaults.
func (c FieldConfig) Validate() error {
	if c.Format != "" && !slices.Contains(formats, c.Format) {
		return fmt.Errorf("ingest: fields: unknown format %q (want one of %v)", string(c.Format), formats)
	}
	for _, f := range [...]struct {
		name  string
		paths []string
	}{{"tenant", c.Tenant}, {"source", c.Source}, {"time", c.Time}} {
		for i, p := range f.paths {
			if p == "" {
				return fmt.Errorf("ingest: fields: %s path %d is empty", f.name, i)
			}
			if p[0] == '.' || p[len(p)-1] == '.' || strings.Contains(p, "..") {
				return fmt.Errorf("ingest: fields: %s path %q has an empty element", f.name, p)
			}
		}
	}
	for i, l := range c.TimeLayouts {
		ref := time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC)
		if t, err := time.Parse(l, ref.Format(l)); l == "" || err != nil || t.Year() != 2006 {
			return fmt.Errorf("ingest: fields: time_layouts[%d] %q is not a Go time layout with a year (e.g. \"01/02/2006 15:04:05\")", i, l)
		}
	}
	if c.MaxMessageBytes < 0 {
		return fmt.Errorf("ingest: fields: max_message_bytes is negative (%d)", c.MaxMessageBytes)
	}
	if c.MaxNameBytes < 0 {
		return fmt.Errorf("ingest: fields: max_name_bytes is negative (%d)", c.MaxNameBytes)
	}
	maxName := c.MaxNameBytes
	if maxName == 0 {
		maxName = defaultMaxNameBytes
	}
	for _, f := range [...]struct{ key, value string }{{"fixed_tenant", c.FixedTenant}, {"fixed_source", c.FixedSource}} {
		if f.value == "" {
			continue
		}
		if why := checkName([]byte(f.value), maxName); why != "" {
			return fmt.Errorf("ingest: fields: %s %s", f.key, why)
		}
	}
	if _, err := newMapping(c); err != nil {
		return err
	}
	return nil
}
