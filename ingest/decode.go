package ingest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// Reason is why a message or one record of it was rejected; it is the value of the
// `reason` label of gapwatch_ingest_rejected_total and of the DLQ header.
type Reason string

// Rejection reasons of the decoder.
const (
	ReasonOversized     Reason = "oversized"      // message larger than FieldConfig.MaxMessageBytes
	ReasonInvalidUTF8   Reason = "invalid_utf8"   // message is not valid UTF-8
	ReasonInvalidJSON   Reason = "invalid_json"   // message is not one RFC 8259 JSON value
	ReasonNotObject     Reason = "not_object"     // valid JSON but not an object (or an envelope record that is not an object)
	ReasonEmptyEnvelope Reason = "empty_envelope" // records/Records array with no element
	ReasonMissingTenant Reason = "missing_tenant" // no tenant field present
	ReasonMissingSource Reason = "missing_source" // no source field present
	ReasonMissingTime   Reason = "missing_time"   // no time field present
	ReasonBadTime       Reason = "bad_time"       // time present but not a form we accept
	ReasonBadTenant     Reason = "bad_tenant"     // empty string, longer than MaxNameBytes, or containing control characters (< 0x20 or 0x7f)
	ReasonBadSource     Reason = "bad_source"     // same rules
)

// Format selects how a topic's messages are laid out.
type Format string

// Message layouts.
const (
	FormatAuto Format = "auto" // default: Azure `records` / CloudTrail `Records` envelopes recognised, else plain JSON event
	FormatJSON Format = "json" // one plain JSON event per message, envelopes not looked for
)

const (
	defaultMaxMessageBytes = 1 << 20
	defaultMaxNameBytes    = 256

	// decMaxDetail caps the length of a rejection detail, in bytes.
	decMaxDetail = 256
	// decMaxExcerpt caps how many bytes of input a detail quotes.
	decMaxExcerpt = 64
	// decMaxJSONError caps the parser's message quoted in an invalid_json detail.
	decMaxJSONError = 160
	// decMaxDepth is the deepest nesting of arrays and objects accepted; it
	// is below fastjson's own limit (fastjson.MaxDepth, 300 values).
	decMaxDepth = 256
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
	Format          Format   `yaml:"format"`            // default FormatAuto
	Tenant          []string `yaml:"tenant"`            // dotted paths, first present wins; default: tenant, tenantId, tenant_id, TenantId
	Source          []string `yaml:"source"`            // default: source, category, log_type, Type
	Time            []string `yaml:"time"`              // default: time, @timestamp, timestamp, TimeGenerated
	FixedSource     string   `yaml:"fixed_source"`      // if set, every plain event (and CloudTrail record) of this topic has this source (paths ignored)
	MaxMessageBytes int      `yaml:"max_message_bytes"` // default 1 MiB (1<<20)
	MaxNameBytes    int      `yaml:"max_name_bytes"`    // default 256: longest tenant or source accepted
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
	switch c.Format {
	case "", FormatAuto, FormatJSON:
	default:
		return fmt.Errorf("ingest: fields: unknown format %q (want %q or %q)", string(c.Format), FormatAuto, FormatJSON)
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
	if c.MaxMessageBytes < 0 {
		return fmt.Errorf("ingest: fields: max_message_bytes is negative (%d)", c.MaxMessageBytes)
	}
	if c.MaxNameBytes < 0 {
		return fmt.Errorf("ingest: fields: max_name_bytes is negative (%d)", c.MaxNameBytes)
	}
	if c.FixedSource != "" {
		maxName := c.MaxNameBytes
		if maxName == 0 {
			maxName = defaultMaxNameBytes
		}
		if why := decCheckName([]byte(c.FixedSource), maxName); why != "" {
			return fmt.Errorf("ingest: fields: fixed_source %s", why)
		}
	}
	return nil
}

// Event is one countable record. Tenant and Source alias the decoder's buffers and are
// valid only during the emit callback (copy them to keep them); they must not be modified.
type Event struct {
	Tenant []byte
	Source []byte
	Time   time.Time // event time in UTC
}

// Decoder turns one Kafka message value into events. Not safe for concurrent use:
// one Decoder per partition goroutine. It reuses its parser between calls.
//
// Field resolution, per record:
//
//   - Plain event (FormatJSON, or FormatAuto without an envelope): tenant,
//     source and time come from the first present of FieldConfig.Tenant,
//     Source and Time; FixedSource, when set, is the source of every plain
//     event and Source is not consulted.
//   - Azure Monitor export, {"records": [ … ]} (FormatAuto): every element is a
//     record. Tenant is tenantId, else the path segment after /tenants/ or
//     /subscriptions/ (any letter case; the leftmost such marker; the segment
//     is kept as written) in resourceId; source is category; time is time.
//     FixedSource does not apply: an Azure record's category names its stream.
//   - CloudTrail, {"Records": [ … ]} (FormatAuto): every element is a record.
//     Tenant is recipientAccountId, else userIdentity.accountId; source is the
//     constant "aws.cloudtrail" (or FixedSource); time is eventTime.
//
// In both envelopes, tenant, source and time paths configured to something
// other than the defaults are tried before the native fields above. A top
// level with both a records and a Records array is read as Azure.
//
// Tenant and source values must be JSON strings; a non-negative JSON integer
// (e.g. "tenantId": 42) is also accepted and used as its decimal text ("42").
// Either way the value must be non-empty, at most MaxNameBytes long, valid
// UTF-8 and free of control characters (< 0x20 and 0x7f); JSON escapes are
// decoded first ("ten\u0061nt" is tenant). Values are not trimmed or
// case-folded. Times are parsed as ParseTime documents.
//
// JSON is checked strictly (RFC 8259: no NaN, no leading zeros, no raw
// control characters or unknown escapes in strings, nothing after the
// value). Arrays and objects nested deeper than 256 levels are reported as
// invalid JSON.
type Decoder struct {
	maxMessage int
	maxName    int
	envelopes  bool

	parser fastjson.Parser

	plain, azure, cloudTrail decRecordSpec

	// Decimal text of numeric tenant, source and time values.
	tenantNum, sourceNum, timeNum []byte
}

// decRecordSpec says how to resolve the three fields of one kind of record.
type decRecordSpec struct {
	tenant, source decNameSpec
	time           decTimeSpec
}

// decNameSpec resolves a tenant or a source.
type decNameSpec struct {
	label      string   // "tenant" or "source"
	paths      []string // tried in order, first present wins
	dotted     []bool   // by path: whether it has a '.' (a nested path)
	resourceID bool     // then the Azure resourceId segment
	constant   []byte   // then, if set, this value
	badConst   string   // why constant is not acceptable (too long for MaxNameBytes), or ""
	missing    Reason
	bad        Reason
	missingMsg string // detail when nothing is present
}

// decTimeSpec resolves the event time.
type decTimeSpec struct {
	paths      []string
	dotted     []bool
	missingMsg string
}

// NewDecoder returns a decoder for cfg, after applying WithDefaults and Validate.
func NewDecoder(cfg FieldConfig) (*Decoder, error) {
	userTenant := decCustomPaths(cfg.Tenant, defaultTenantPaths)
	userSource := decCustomPaths(cfg.Source, defaultSourcePaths)
	userTime := decCustomPaths(cfg.Time, defaultTimePaths)

	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Decoder{
		maxMessage: cfg.MaxMessageBytes,
		maxName:    cfg.MaxNameBytes,
		envelopes:  cfg.Format == FormatAuto,
	}
	var fixed []byte
	if cfg.FixedSource != "" {
		fixed = []byte(cfg.FixedSource)
	}

	d.plain.tenant = decNewNameSpec("tenant", slices.Clone(cfg.Tenant), nil)
	if fixed != nil {
		d.plain.source = decNewNameSpec("source", nil, fixed)
	} else {
		d.plain.source = decNewNameSpec("source", slices.Clone(cfg.Source), nil)
	}
	d.plain.time = decNewTimeSpec(slices.Clone(cfg.Time))

	d.azure.tenant = decNewNameSpec("tenant", append(userTenant, "tenantId"), nil)
	d.azure.tenant.resourceID = true
	d.azure.tenant.missingMsg = "no tenant field among " + decListPaths(append(d.azure.tenant.paths, "resourceId"))
	d.azure.source = decNewNameSpec("source", append(userSource, "category"), nil)
	d.azure.time = decNewTimeSpec(append(userTime, "time"))

	d.cloudTrail.tenant = decNewNameSpec("tenant", append(userTenant, "recipientAccountId", "userIdentity.accountId"), nil)
	if fixed != nil {
		d.cloudTrail.source = decNewNameSpec("source", nil, fixed)
	} else {
		d.cloudTrail.source = decNewNameSpec("source", userSource, []byte(cloudTrailSource))
		if why := decCheckName(d.cloudTrail.source.constant, d.maxName); why != "" {
			d.cloudTrail.source.badConst = "source " + why + " (max_name_bytes)"
		}
	}
	d.cloudTrail.time = decNewTimeSpec(append(userTime, "eventTime"))
	return d, nil
}

// decCustomPaths returns a copy of paths when they differ from the defaults
// (the user configured them), else nil.
func decCustomPaths(paths, defaults []string) []string {
	if len(paths) == 0 || slices.Equal(paths, defaults) {
		return nil
	}
	return slices.Clip(slices.Clone(paths))
}

func decNewNameSpec(label string, paths []string, constant []byte) decNameSpec {
	s := decNameSpec{label: label, paths: slices.Clip(paths), dotted: decDotted(paths), constant: constant}
	if label == "tenant" {
		s.missing, s.bad = ReasonMissingTenant, ReasonBadTenant
	} else {
		s.missing, s.bad = ReasonMissingSource, ReasonBadSource
	}
	s.missingMsg = "no " + label + " field among " + decListPaths(paths)
	return s
}

func decNewTimeSpec(paths []string) decTimeSpec {
	return decTimeSpec{paths: slices.Clip(paths), dotted: decDotted(paths), missingMsg: "no time field among " + decListPaths(paths)}
}

// decDotted tells, for each path, whether it is nested: precomputed, as a
// lookup runs for every field of every record.
func decDotted(paths []string) []bool {
	out := make([]bool, len(paths))
	for i, p := range paths {
		out[i] = strings.IndexByte(p, '.') >= 0
	}
	return out
}

func decListPaths(paths []string) string {
	return "[" + strings.Join(paths, " ") + "]"
}

// Decode calls emit for every countable record of value and reject for every
// rejected one: the whole message (oversized, invalid UTF-8, invalid JSON, ...) or
// one record of an envelope (the other records still count). detail is a short
// human-readable explanation (e.g. "record 3: no tenant field among [tenantId resourceId]",
// records numbered from 0); it never holds more than 256 bytes, is valid UTF-8 and
// quotes at most a short excerpt of the input. Decode never panics on any input.
// It returns the number of events emitted and of rejections; their sum is at least
// one for every input, and exactly one per record of an envelope. Either callback
// may be nil.
func (d *Decoder) Decode(value []byte, emit func(Event), reject func(reason Reason, detail string)) (events, rejected int) {
	if len(value) > d.maxMessage {
		decReject(reject, ReasonOversized, fmt.Sprintf("message is %d bytes, limit %d", len(value), d.maxMessage))
		return 0, 1
	}
	// fastjson's parser is lenient (NaN, 1.2.3, raw control characters and
	// unknown escapes in strings), so a strict RFC 8259 check comes first. It
	// also checks UTF-8 (only strings may hold non-ASCII bytes): a message
	// that passes is valid UTF-8, and one that fails is looked at again to
	// give invalid UTF-8 anywhere precedence as the reason.
	if pos, why := decValidJSON(value); why != "" {
		if !utf8.Valid(value) {
			decReject(reject, ReasonInvalidUTF8, fmt.Sprintf("invalid UTF-8 at byte %d", decInvalidUTF8At(value)))
			return 0, 1
		}
		decReject(reject, ReasonInvalidJSON, "invalid JSON at byte "+strconv.Itoa(pos)+": "+why+decNear(value, pos))
		return 0, 1
	}
	root, err := d.parser.ParseBytes(value)
	if err != nil { // not expected after decValidJSON; kept for safety
		decReject(reject, ReasonInvalidJSON, "invalid JSON: "+decJSONError(err))
		return 0, 1
	}
	if root.Type() != fastjson.TypeObject {
		decReject(reject, ReasonNotObject, "top-level value is "+decTypeName(root.Type())+", want an object")
		return 0, 1
	}
	if d.envelopes {
		obj, _ := root.Object()
		if recs := obj.Get("records"); recs != nil && recs.Type() == fastjson.TypeArray {
			return d.envelope(recs, "records", &d.azure, emit, reject)
		}
		if recs := obj.Get("Records"); recs != nil && recs.Type() == fastjson.TypeArray {
			return d.envelope(recs, "Records", &d.cloudTrail, emit, reject)
		}
	}
	if d.record(root, -1, &d.plain, emit, reject) {
		return 1, 0
	}
	return 0, 1
}

func (d *Decoder) envelope(recs *fastjson.Value, key string, spec *decRecordSpec, emit func(Event), reject func(Reason, string)) (events, rejected int) {
	arr, _ := recs.Array()
	if len(arr) == 0 {
		decReject(reject, ReasonEmptyEnvelope, key+" array is empty")
		return 0, 1
	}
	for i, rec := range arr {
		if t := rec.Type(); t != fastjson.TypeObject {
			decReject(reject, ReasonNotObject, decRecordPrefix(i)+"value is "+decTypeName(t)+", want an object")
			rejected++
			continue
		}
		if d.record(rec, i, spec, emit, reject) {
			events++
		} else {
			rejected++
		}
	}
	return events, rejected
}

// record resolves one object record and emits or rejects it; index is its
// place in an envelope, or -1 for a plain event. It reports whether it emitted.
func (d *Decoder) record(rec *fastjson.Value, index int, spec *decRecordSpec, emit func(Event), reject func(Reason, string)) bool {
	tenant, reason, detail := d.name(rec, &spec.tenant, &d.tenantNum)
	if reason == "" {
		var source []byte
		source, reason, detail = d.name(rec, &spec.source, &d.sourceNum)
		if reason == "" {
			var t time.Time
			t, reason, detail = d.eventTime(rec, &spec.time)
			if reason == "" {
				if emit != nil {
					emit(Event{Tenant: tenant, Source: source, Time: t})
				}
				return true
			}
		}
	}
	if index >= 0 {
		detail = decRecordPrefix(index) + detail
	}
	decReject(reject, reason, detail)
	return false
}

// name resolves a tenant or source of rec. On failure it returns the reason
// and a detail; num is the buffer for the text of a numeric value.
func (d *Decoder) name(rec *fastjson.Value, spec *decNameSpec, num *[]byte) ([]byte, Reason, string) {
	for i, path := range spec.paths {
		v := decLookup(rec, path, spec.dotted[i])
		if v == nil {
			continue
		}
		var b []byte
		switch v.Type() {
		case fastjson.TypeString:
			b, _ = v.StringBytes()
		case fastjson.TypeNumber:
			*num = v.MarshalTo((*num)[:0])
			b = *num
			if !decIsInteger(b) {
				return nil, spec.bad, spec.label + " field " + path + " is the number " + decExcerpt(b) + ", want a string or a non-negative integer"
			}
		default:
			return nil, spec.bad, spec.label + " field " + path + " is " + decTypeName(v.Type()) + ", want a string"
		}
		if why := decCheckName(b, d.maxName); why != "" {
			return nil, spec.bad, spec.label + " field " + path + " " + why
		}
		return b, "", ""
	}
	if spec.resourceID {
		if v := decGet(rec, "resourceId"); v != nil {
			if v.Type() != fastjson.TypeString {
				return nil, spec.bad, spec.label + " field resourceId is " + decTypeName(v.Type()) + ", want a string"
			}
			rid, _ := v.StringBytes()
			seg, ok := decResourceTenant(rid)
			if !ok {
				return nil, spec.missing, "no " + spec.label + " field among " + decListPaths(spec.paths) +
					" and no /tenants/ or /subscriptions/ segment in resourceId " + decExcerpt(rid)
			}
			if why := decCheckName(seg, d.maxName); why != "" {
				return nil, spec.bad, spec.label + " from resourceId " + decExcerpt(rid) + " " + why
			}
			return seg, "", ""
		}
	}
	if spec.constant != nil {
		if spec.badConst != "" {
			return nil, spec.bad, spec.badConst
		}
		return spec.constant, "", ""
	}
	return nil, spec.missing, spec.missingMsg
}

// eventTime resolves the event time of rec.
func (d *Decoder) eventTime(rec *fastjson.Value, spec *decTimeSpec) (time.Time, Reason, string) {
	for i, path := range spec.paths {
		v := decLookup(rec, path, spec.dotted[i])
		if v == nil {
			continue
		}
		var (
			t    time.Time
			ok   bool
			text []byte
		)
		switch v.Type() {
		case fastjson.TypeString:
			text, _ = v.StringBytes()
			t, ok = tsParseText(text)
		case fastjson.TypeNumber:
			d.timeNum = v.MarshalTo(d.timeNum[:0])
			text = d.timeNum
			t, ok = tsParseEpoch(text)
		default:
			return time.Time{}, ReasonBadTime, "time field " + path + " is " + decTypeName(v.Type()) + ", want a string or a number"
		}
		if !ok {
			return time.Time{}, ReasonBadTime, "time field " + path + " " + decExcerpt(text) + " is not a recognised timestamp between 1971 and 2200"
		}
		return t, "", ""
	}
	return time.Time{}, ReasonMissingTime, spec.missingMsg
}

// decLookup finds the present (non-null) value at a dotted path of rec:
// first by walking nested objects, then as one literal key of rec. dotted
// says whether path has a '.'.
func decLookup(rec *fastjson.Value, path string, dotted bool) *fastjson.Value {
	if !dotted {
		return decGet(rec, path)
	}
	v := rec
	rest := path
	for v != nil {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			if v = decGet(v, rest); v != nil {
				return v
			}
			break
		}
		v = decGet(v, rest[:i])
		rest = rest[i+1:]
	}
	return decGet(rec, path)
}

// decGet returns the non-null value of key in object v, or nil.
func decGet(v *fastjson.Value, key string) *fastjson.Value {
	if v.Type() != fastjson.TypeObject {
		return nil
	}
	obj, _ := v.Object()
	r := obj.Get(key)
	if r == nil || r.Type() == fastjson.TypeNull {
		return nil
	}
	return r
}

// decResourceTenant returns the path segment after the leftmost /tenants/ or
// /subscriptions/ (ASCII case-insensitive) of an Azure resource ID.
func decResourceTenant(rid []byte) ([]byte, bool) {
	for i := 0; i < len(rid); i++ {
		if rid[i] != '/' {
			continue
		}
		rest := rid[i+1:]
		var n int
		switch {
		case decHasPrefixFold(rest, "tenants/"):
			n = len("tenants/")
		case decHasPrefixFold(rest, "subscriptions/"):
			n = len("subscriptions/")
		default:
			continue
		}
		seg := rest[n:]
		if j := bytes.IndexByte(seg, '/'); j >= 0 {
			seg = seg[:j]
		}
		return seg, true
	}
	return nil, false
}

// decHasPrefixFold reports whether b starts with the lower-case ASCII prefix,
// ignoring ASCII case.
func decHasPrefixFold(b []byte, prefix string) bool {
	if len(b) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// decCheckName returns why b is not an acceptable tenant or source, or "".
func decCheckName(b []byte, maxName int) string {
	if len(b) == 0 {
		return "is empty"
	}
	if len(b) > maxName {
		return "is " + strconv.Itoa(len(b)) + " bytes, longer than " + strconv.Itoa(maxName) + ": " + decExcerpt(b)
	}
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return fmt.Sprintf("contains control character 0x%02x: %s", c, decExcerpt(b))
		}
	}
	if !utf8.Valid(b) {
		return "is not valid UTF-8: " + decExcerpt(b)
	}
	return ""
}

// decIsInteger reports whether the JSON number text b is a non-negative
// integer literal.
func decIsInteger(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// decExcerpt quotes at most decMaxExcerpt bytes of b (cut on a rune
// boundary), marking a cut with "...".
func decExcerpt(b []byte) string {
	if len(b) <= decMaxExcerpt {
		return strconv.Quote(string(b))
	}
	cut := decMaxExcerpt
	for cut > decMaxExcerpt-utf8.UTFMax && cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return strconv.Quote(string(b[:cut])) + "..."
}

// decClip cuts s to at most n bytes on a rune boundary and makes it valid UTF-8.
func decClip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > n {
		cut := n
		for cut > n-utf8.UTFMax && cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// decJSONError shortens a fastjson error: it drops the chain of "cannot
// parse object: cannot parse array value: ..." wrappers (one per nesting
// level) and keeps the innermost cause and the excerpt of the unparsed tail.
func decJSONError(err error) string {
	msg := err.Error()
	for {
		trimmed := msg
		for _, w := range [...]string{"cannot parse JSON: ", "cannot parse object: ", "cannot parse array: ",
			"cannot parse object value: ", "cannot parse array value: "} {
			trimmed = strings.TrimPrefix(trimmed, w)
		}
		if trimmed == msg {
			break
		}
		msg = trimmed
	}
	return decClip(msg, decMaxJSONError)
}

func decRecordPrefix(i int) string {
	return "record " + strconv.Itoa(i) + ": "
}

func decReject(reject func(Reason, string), reason Reason, detail string) {
	if reject != nil {
		reject(reason, decClip(detail, decMaxDetail))
	}
}

func decTypeName(t fastjson.Type) string {
	switch t {
	case fastjson.TypeObject:
		return "an object"
	case fastjson.TypeArray:
		return "an array"
	case fastjson.TypeString:
		return "a string"
	case fastjson.TypeNumber:
		return "a number"
	case fastjson.TypeTrue, fastjson.TypeFalse:
		return "a boolean"
	case fastjson.TypeNull:
		return "null"
	}
	return "an unknown value"
}

// decInvalidUTF8At returns the offset of the first byte that is not part of
// a valid UTF-8 sequence.
func decInvalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}

// decValidJSON checks that b is exactly one RFC 8259 JSON value (surrounded
// by optional whitespace), nested at most decMaxDepth deep, in valid UTF-8
// (a non-ASCII byte outside a string is not JSON). It returns "" or why not and the byte offset where it
// failed. It is iterative, allocation-free and a single pass.
func decValidJSON(b []byte) (pos int, why string) {
	// open has a bit per nesting level, set when that container is an object.
	var open [decMaxDepth / 64]uint64
	depth := 0
	obj := false // the innermost open container is an object

	i := decSkipWS(b, 0)
	for {
		// A value starts at i.
		if i >= len(b) {
			return i, "unexpected end of input"
		}
		switch c := b[i]; {
		case c == '"':
			if i, why = decScanString(b, i); why != "" {
				return i, why
			}
		case c == '{' || c == '[':
			if depth == decMaxDepth {
				return i, "nesting deeper than " + strconv.Itoa(decMaxDepth) + " levels"
			}
			obj = c == '{'
			if obj {
				open[depth/64] |= 1 << (depth % 64)
			} else {
				open[depth/64] &^= 1 << (depth % 64)
			}
			depth++
			i = decSkipWS(b, i+1)
			if i < len(b) && b[i] == c+2 { // '{'+2 is '}', '['+2 is ']'
				i++
				depth--
				obj = depth > 0 && open[(depth-1)/64]&(1<<((depth-1)%64)) != 0
				break
			}
			if obj {
				if i, why = decScanKey(b, i); why != "" {
					return i, why
				}
			}
			continue
		case c == '-' || c >= '0' && c <= '9':
			if i, why = decScanNumber(b, i); why != "" {
				return i, why
			}
		case c == 't':
			if i, why = decScanLiteral(b, i, "true"); why != "" {
				return i, why
			}
		case c == 'f':
			if i, why = decScanLiteral(b, i, "false"); why != "" {
				return i, why
			}
		case c == 'n':
			if i, why = decScanLiteral(b, i, "null"); why != "" {
				return i, why
			}
		default:
			return i, "unexpected " + decCharAt(b, i)
		}

		// A value ended before i: close containers until a ',' asks for the next value.
		for {
			if i < len(b) && b[i] <= ' ' {
				i = decSkipWS(b, i)
			}
			if depth == 0 {
				if i != len(b) {
					return i, "unexpected " + decCharAt(b, i) + " after the top-level value"
				}
				return 0, ""
			}
			if i >= len(b) {
				return i, "unexpected end of input"
			}
			c := b[i]
			if c == ',' {
				i = decSkipWS(b, i+1)
				if obj {
					if i, why = decScanKey(b, i); why != "" {
						return i, why
					}
				}
				break
			}
			if obj && c != '}' {
				return i, "unexpected " + decCharAt(b, i) + ", want ',' or '}'"
			}
			if !obj && c != ']' {
				return i, "unexpected " + decCharAt(b, i) + ", want ',' or ']'"
			}
			i++
			depth--
			obj = depth > 0 && open[(depth-1)/64]&(1<<((depth-1)%64)) != 0
		}
	}
}

// decScanKey checks an object key and its colon at b[i:] and returns the
// index where the value starts.
func decScanKey(b []byte, i int) (int, string) {
	if i >= len(b) {
		return i, "unexpected end of input"
	}
	if b[i] != '"' {
		return i, "unexpected " + decCharAt(b, i) + ", want an object key"
	}
	i, why := decScanString(b, i)
	if why != "" {
		return i, why
	}
	i = decSkipWS(b, i)
	if i >= len(b) {
		return i, "unexpected end of input"
	}
	if b[i] != ':' {
		return i, "unexpected " + decCharAt(b, i) + ", want ':'"
	}
	return decSkipWS(b, i+1), ""
}

func decSkipWS(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// decPlainString marks the bytes a JSON string holds as themselves: ASCII
// but the quote, the backslash and control characters (non-ASCII bytes are
// checked as UTF-8).
var decPlainString = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// decScanString checks the string starting with the quote at b[i] and
// returns the index after its closing quote.
func decScanString(b []byte, i int) (int, string) {
	i++
	for {
		// Eight bytes at a time while none is a quote, a backslash or a
		// control character (the usual case), then byte by byte.
		for i+8 <= len(b) {
			w := binary.LittleEndian.Uint64(b[i:])
			if w&decHighs|decHasLess(w, 0x20)|decHasZero(w^(decOnes*'"'))|decHasZero(w^(decOnes*'\\')) != 0 {
				break
			}
			i += 8
		}
		for i < len(b) && decPlainString[b[i]] {
			i++
		}
		if i >= len(b) {
			return i, "unterminated string"
		}
		switch c := b[i]; {
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size <= 1 {
				return i, "invalid UTF-8 in string"
			}
			i += size
		case c == '"':
			return i + 1, ""
		case c == '\\':
			if i+1 >= len(b) {
				return i + 1, "unterminated string"
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := i + 2; k < i+6; k++ {
					if k >= len(b) {
						return k, "unterminated string"
					}
					if _, ok := tsHexVal(b[k]); !ok {
						return i, "invalid escape " + decExcerpt(b[i:min(i+6, len(b))]) + " in string"
					}
				}
				i += 6
			default:
				return i, "invalid escape " + decExcerpt(b[i:i+2]) + " in string"
			}
		default:
			return i, fmt.Sprintf("control character 0x%02x in string", c)
		}
	}
}

const (
	decOnes  = 0x0101010101010101
	decHighs = 0x8080808080808080
)

// decHasZero reports (as non-zero) whether a byte of w is zero.
func decHasZero(w uint64) uint64 { return (w - decOnes) & ^w & decHighs }

// decHasLess reports (as non-zero) whether a byte of w is below n (n ≤ 128).
func decHasLess(w uint64, n uint64) uint64 { return (w - decOnes*n) & ^w & decHighs }

// decScanNumber checks the number starting at b[i] (a '-' or a digit) and
// returns the index after it.
func decScanNumber(b []byte, i int) (int, string) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b) || b[i] < '0' || b[i] > '9':
		return i, "number without digits"
	case b[i] == '0':
		i++
	default:
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return i, "number without fraction digits"
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return i, "number without exponent digits"
		}
	}
	return i, ""
}

func decScanLiteral(b []byte, i int, lit string) (int, string) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, "unexpected " + decCharAt(b, i)
	}
	return i + len(lit), ""
}

// decCharAt names the character at b[i] for an error message.
func decCharAt(b []byte, i int) string {
	if i >= len(b) {
		return "end of input"
	}
	r, _ := utf8.DecodeRune(b[i:])
	return strconv.QuoteRune(r)
}

// decNear quotes a little of b around pos for an error message.
func decNear(b []byte, pos int) string {
	if len(b) == 0 {
		return ""
	}
	start := max(0, pos-16)
	for start > 0 && start > pos-16-utf8.UTFMax && !utf8.RuneStart(b[start]) {
		start--
	}
	end := min(len(b), start+32)
	for end < len(b) && end < start+32+utf8.UTFMax && !utf8.RuneStart(b[end]) {
		end++
	}
	return " near " + strconv.Quote(string(b[start:end]))
}
