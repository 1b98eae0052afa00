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
	// decMaxDepth is the deepest nesting of arrays and objects accepted.
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

// Event is one countable record. Tenant and Source alias the message value or the
// decoder's buffers and are valid only during the emit callback (copy them to keep
// them); they must not be modified.
type Event struct {
	Tenant []byte
	Source []byte
	Time   time.Time // event time in UTC
}

// Decoder turns one Kafka message value into events. Not safe for concurrent use:
// one Decoder per partition goroutine. It reuses its buffers between calls.
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
// decoded first ("ten\u0061nt" is tenant), in values and in object keys
// alike. A \u escape of a UTF-16 surrogate that is not half of a valid pair
// ("\ud800" alone) decodes to U+FFFD, as in encoding/json. Values are not
// trimmed or case-folded. Times are parsed as ParseTime documents.
//
// JSON is checked strictly (RFC 8259: no NaN, no leading zeros, no raw
// control characters or unknown escapes in strings, nothing after the
// value). Arrays and objects nested deeper than 256 levels are reported as
// invalid JSON.
//
// After that check no tree is built: the members of each record are walked
// once, the values of the keys the paths name are noted, and all else is
// skipped (see extract.go).
type Decoder struct {
	maxMessage int
	maxName    int
	envelopes  bool

	plain, azure, cloudTrail decRecordSpec
	// Indices of "records" and "Records" in plain.keys, with envelopes.
	azureKey, cloudTrailKey int

	// Where the values of a record's keys start, by key index: top for the
	// top-level object, vals for an envelope record.
	top, vals []decSpan

	// Decoded escaped strings: one buffer per field, so that the tenant
	// survives decoding the source; key for object keys.
	tenantBuf, sourceBuf, timeBuf, keyBuf []byte

	// A CloudTrail envelope is decoded before the rest of the top level is
	// read, as a later "records" array would make the message Azure; its
	// results wait here until then. arena holds their tenants and sources.
	pending    []decPending
	arena      []byte
	holdEvent  func(Event)
	holdReject func(Reason, string)
}

// decPending is one held result: an event if reason is "".
type decPending struct {
	reason      Reason
	detail      string
	tenantStart int
	sourceStart int
	sourceEnd   int
	time        time.Time
}

// decRecordSpec says how to resolve the three fields of one kind of record.
type decRecordSpec struct {
	keys           decKeySet // every top-level key the paths need
	tenant, source decNameSpec
	time           decTimeSpec
}

// decNameSpec resolves a tenant or a source.
type decNameSpec struct {
	label       string    // "tenant" or "source"
	paths       []string  // tried in order, first present wins
	lookups     []decPath // by path
	resourceID  bool      // then the Azure resourceId segment
	resourceKey int       // index of "resourceId" in the record's keys
	constant    []byte    // then, if set, this value
	badConst    string    // why constant is not acceptable (too long for MaxNameBytes), or ""
	missing     Reason
	bad         Reason
	missingMsg  string // detail when nothing is present
}

// decTimeSpec resolves the event time.
type decTimeSpec struct {
	paths      []string
	lookups    []decPath
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
		maxMessage:    cfg.MaxMessageBytes,
		maxName:       cfg.MaxNameBytes,
		envelopes:     cfg.Format == FormatAuto,
		azureKey:      -1,
		cloudTrailKey: -1,
	}
	d.holdEvent, d.holdReject = d.hold, d.holdRejection
	var fixed []byte
	if cfg.FixedSource != "" {
		fixed = []byte(cfg.FixedSource)
	}

	p := &d.plain
	p.tenant = decNewNameSpec(&p.keys, "tenant", slices.Clone(cfg.Tenant), nil)
	if fixed != nil {
		p.source = decNewNameSpec(&p.keys, "source", nil, fixed)
	} else {
		p.source = decNewNameSpec(&p.keys, "source", slices.Clone(cfg.Source), nil)
	}
	p.time = decNewTimeSpec(&p.keys, slices.Clone(cfg.Time))
	if d.envelopes {
		d.azureKey = p.keys.add("records")
		d.cloudTrailKey = p.keys.add("Records")
	}

	a := &d.azure
	a.tenant = decNewNameSpec(&a.keys, "tenant", append(userTenant, "tenantId"), nil)
	a.tenant.resourceID = true
	a.tenant.resourceKey = a.keys.add("resourceId")
	a.tenant.missingMsg = "no tenant field among " + decListPaths(append(a.tenant.paths, "resourceId"))
	a.source = decNewNameSpec(&a.keys, "source", append(userSource, "category"), nil)
	a.time = decNewTimeSpec(&a.keys, append(userTime, "time"))

	c := &d.cloudTrail
	c.tenant = decNewNameSpec(&c.keys, "tenant", append(userTenant, "recipientAccountId", "userIdentity.accountId"), nil)
	if fixed != nil {
		c.source = decNewNameSpec(&c.keys, "source", nil, fixed)
	} else {
		c.source = decNewNameSpec(&c.keys, "source", userSource, []byte(cloudTrailSource))
		if why := decCheckName(c.source.constant, d.maxName); why != "" {
			c.source.badConst = "source " + why + " (max_name_bytes)"
		}
	}
	c.time = decNewTimeSpec(&c.keys, append(userTime, "eventTime"))

	d.top = make([]decSpan, len(p.keys.names))
	d.vals = make([]decSpan, max(len(a.keys.names), len(c.keys.names)))
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

func decNewNameSpec(keys *decKeySet, label string, paths []string, constant []byte) decNameSpec {
	s := decNameSpec{label: label, paths: slices.Clip(paths), lookups: decLookups(keys, paths), constant: constant}
	if label == "tenant" {
		s.missing, s.bad = ReasonMissingTenant, ReasonBadTenant
	} else {
		s.missing, s.bad = ReasonMissingSource, ReasonBadSource
	}
	s.missingMsg = "no " + label + " field among " + decListPaths(paths)
	return s
}

func decNewTimeSpec(keys *decKeySet, paths []string) decTimeSpec {
	return decTimeSpec{paths: slices.Clip(paths), lookups: decLookups(keys, paths), missingMsg: "no time field among " + decListPaths(paths)}
}

func decLookups(keys *decKeySet, paths []string) []decPath {
	out := make([]decPath, len(paths))
	for i, p := range paths {
		out[i] = keys.path(p)
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
	// The extractor relies on valid JSON, so a strict RFC 8259 check comes
	// first. It also checks UTF-8 (only strings may hold non-ASCII bytes): a
	// message that passes is valid UTF-8, and one that fails is looked at
	// again to give invalid UTF-8 anywhere precedence as the reason.
	if pos, why := decValidJSON(value); why != "" {
		if !utf8.Valid(value) {
			decReject(reject, ReasonInvalidUTF8, fmt.Sprintf("invalid UTF-8 at byte %d", decInvalidUTF8At(value)))
			return 0, 1
		}
		decReject(reject, ReasonInvalidJSON, "invalid JSON at byte "+strconv.Itoa(pos)+": "+why+decNear(value, pos))
		return 0, 1
	}
	b := value
	i := decSkipWS(b, 0)
	if b[i] != '{' {
		decReject(reject, ReasonNotObject, "top-level value is "+decTypeName(b[i])+", want an object")
		return 0, 1
	}

	// One walk over the top level notes the plain event's fields and looks
	// for the envelopes: the first "records" if it is an array, else the
	// first "Records" if it is an array.
	top := d.top
	clear(top)
	held := false // a CloudTrail envelope was decoded into d.pending
	i = decSkipWS(b, i+1)
	for b[i] != '}' {
		k, v := decMember(b, i, &d.plain.keys, &d.keyBuf)
		end := 0
		if k >= 0 && top[k].start == 0 {
			top[k] = decSpanAt(b, v)
			end = top[k].end
			if b[v] == '[' && k == d.azureKey {
				clear(d.pending) // a held CloudTrail envelope is not the message's
				d.pending = d.pending[:0]
				events, rejected, _ = d.envelope(b, v, "records", &d.azure, emit, reject)
				return events, rejected
			}
			if b[v] == '[' && k == d.cloudTrailKey {
				if top[d.azureKey].start != 0 { // the first "records" is no array
					events, rejected, _ = d.envelope(b, v, "Records", &d.cloudTrail, emit, reject)
					return events, rejected
				}
				d.pending, d.arena = d.pending[:0], d.arena[:0]
				events, rejected, end = d.envelope(b, v, "Records", &d.cloudTrail, d.holdEvent, d.holdReject)
				held = true
			}
		}
		if end == 0 {
			end = decSkipValue(b, v)
		}
		next, _ := decNextMember(b, end)
		if next < 0 {
			break
		}
		i = next
	}
	if held {
		d.release(emit, reject)
		return events, rejected
	}
	if d.record(b, top, -1, &d.plain, emit, reject) {
		return 1, 0
	}
	return 0, 1
}

// envelope decodes the records of the array at b[i] (under key) and returns
// the counts and the index after the array.
func (d *Decoder) envelope(b []byte, i int, key string, spec *decRecordSpec, emit func(Event), reject func(Reason, string)) (events, rejected, end int) {
	i = decSkipWS(b, i+1)
	if b[i] == ']' {
		decReject(reject, ReasonEmptyEnvelope, key+" array is empty")
		return 0, 1, i + 1
	}
	vals := d.vals[:len(spec.keys.names)]
	for n := 0; ; n++ {
		if b[i] == '{' {
			clear(vals)
			i = decScanObject(b, i, &spec.keys, vals, &d.keyBuf)
			if d.record(b, vals, n, spec, emit, reject) {
				events++
			} else {
				rejected++
			}
		} else {
			decReject(reject, ReasonNotObject, decRecordPrefix(n)+"value is "+decTypeName(b[i])+", want an object")
			rejected++
			i = decSkipValue(b, i)
		}
		if b[i] <= ' ' {
			i = decSkipWS(b, i)
		}
		if b[i] == ']' {
			return events, rejected, i + 1
		}
		i = decSkipWS(b, i+1)
	}
}

// hold is the emit callback of a held envelope: it keeps a copy of e.
func (d *Decoder) hold(e Event) {
	start := len(d.arena)
	d.arena = append(d.arena, e.Tenant...)
	d.arena = append(d.arena, e.Source...)
	d.pending = append(d.pending, decPending{tenantStart: start, sourceStart: start + len(e.Tenant), sourceEnd: len(d.arena), time: e.Time})
}

// holdRejection is the reject callback of a held envelope.
func (d *Decoder) holdRejection(reason Reason, detail string) {
	d.pending = append(d.pending, decPending{reason: reason, detail: detail})
}

// release passes the held results on, in order.
func (d *Decoder) release(emit func(Event), reject func(Reason, string)) {
	for _, p := range d.pending {
		switch {
		case p.reason != "":
			if reject != nil {
				reject(p.reason, p.detail)
			}
		case emit != nil:
			emit(Event{
				Tenant: d.arena[p.tenantStart:p.sourceStart:p.sourceStart],
				Source: d.arena[p.sourceStart:p.sourceEnd:p.sourceEnd],
				Time:   p.time,
			})
		}
	}
	clear(d.pending) // drop the details
	d.pending = d.pending[:0]
}

// record resolves one object record, whose values by key index vals holds,
// and emits or rejects it; index is its place in an envelope, or -1 for a
// plain event. It reports whether it emitted.
func (d *Decoder) record(b []byte, vals []decSpan, index int, spec *decRecordSpec, emit func(Event), reject func(Reason, string)) bool {
	tenant, reason, detail := d.name(b, vals, &spec.tenant, &d.tenantBuf)
	if reason == "" {
		var source []byte
		source, reason, detail = d.name(b, vals, &spec.source, &d.sourceBuf)
		if reason == "" {
			var t time.Time
			t, reason, detail = d.eventTime(b, vals, &spec.time)
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

// name resolves a tenant or source. On failure it returns the reason and a
// detail; scratch is the buffer for the value if it has escapes.
func (d *Decoder) name(b []byte, vals []decSpan, spec *decNameSpec, scratch *[]byte) ([]byte, Reason, string) {
	for i := range spec.lookups {
		v, ok := d.lookup(b, vals, &spec.lookups[i])
		if !ok {
			continue
		}
		var s []byte
		switch c := b[v.start]; {
		case c == '"':
			s = decText(b, v, scratch)
		case c == '-' || c >= '0' && c <= '9':
			s = b[v.start:decNumberEnd(b, v.start)]
			if !decIsInteger(s) {
				return nil, spec.bad, spec.label + " field " + spec.paths[i] + " is the number " + decExcerpt(s) + ", want a string or a non-negative integer"
			}
		default:
			return nil, spec.bad, spec.label + " field " + spec.paths[i] + " is " + decTypeName(c) + ", want a string"
		}
		if why := decCheckName(s, d.maxName); why != "" {
			return nil, spec.bad, spec.label + " field " + spec.paths[i] + " " + why
		}
		return s, "", ""
	}
	if spec.resourceID {
		if v := vals[spec.resourceKey]; v.present(b) {
			if c := b[v.start]; c != '"' {
				return nil, spec.bad, spec.label + " field resourceId is " + decTypeName(c) + ", want a string"
			}
			rid := decText(b, v, scratch)
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

// eventTime resolves the event time.
func (d *Decoder) eventTime(b []byte, vals []decSpan, spec *decTimeSpec) (time.Time, Reason, string) {
	for i := range spec.lookups {
		v, ok := d.lookup(b, vals, &spec.lookups[i])
		if !ok {
			continue
		}
		var (
			t    time.Time
			text []byte
		)
		switch c := b[v.start]; {
		case c == '"':
			text = decText(b, v, &d.timeBuf)
			t, ok = tsParseText(text)
		case c == '-' || c >= '0' && c <= '9':
			text = b[v.start:decNumberEnd(b, v.start)]
			t, ok = tsParseEpoch(text)
		default:
			return time.Time{}, ReasonBadTime, "time field " + spec.paths[i] + " is " + decTypeName(c) + ", want a string or a number"
		}
		if !ok {
			return time.Time{}, ReasonBadTime, "time field " + spec.paths[i] + " " + decExcerpt(text) + " is not a recognised timestamp between 1971 and 2200"
		}
		return t, "", ""
	}
	return time.Time{}, ReasonMissingTime, spec.missingMsg
}

// lookup returns the present (non-null) value at path p of a record, whose
// values by key index vals holds: first by walking nested objects, then as
// one literal key of the record.
func (d *Decoder) lookup(b []byte, vals []decSpan, p *decPath) (decSpan, bool) {
	v := vals[p.key]
	if p.rest == nil {
		return v, v.present(b)
	}
	for _, key := range p.rest {
		if v.start == 0 || b[v.start] != '{' {
			v = decSpan{}
			break
		}
		v = decSpan{start: decObjectGet(b, v.start, key, &d.keyBuf)}
	}
	if v.present(b) {
		return v, true
	}
	v = vals[p.literal]
	return v, v.present(b)
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
	if len(b) != 0 && len(b) <= maxName && decPrintableASCII(b) {
		return ""
	}
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

// decPrintableASCII reports whether b holds only ASCII bytes from 0x20 to
// 0x7e, the usual tenant or source, checking eight bytes at a time.
func decPrintableASCII(b []byte) bool {
	for len(b) >= 8 {
		w := binary.LittleEndian.Uint64(b)
		if w&decHighs|decHasLess(w, 0x20)|decHasZero(w^(decOnes*0x7f)) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
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

func decRecordPrefix(i int) string {
	return "record " + strconv.Itoa(i) + ": "
}

func decReject(reject func(Reason, string), reason Reason, detail string) {
	if reject != nil {
		reject(reason, decClip(detail, decMaxDetail))
	}
}

// decTypeName names the type of the JSON value that starts with c.
func decTypeName(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
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
