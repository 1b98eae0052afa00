package decode

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

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
// UTF-8 and free of control characters (< 0x20, 0x7f and C1 U+0080–U+009F); JSON escapes are
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
// No tree is built: one walk over the message checks it and notes where the
// values of the keys the paths name start (json.go, extract.go); records are
// resolved from those notes once the whole message is known to be valid.
type Decoder struct {
	maxMessage int
	maxName    int
	envelopes  bool
	format     Format

	plain, azure, cloudTrail recordSpec
	objects                  []objectFormat // single-object envelopes (objects.go)
	otlpSpec                 otlpSpec
	fixedSource              []byte // FieldConfig.FixedSource, for syslog and CEF lines
	mapping                  mapping

	// What the walk over the last message noted; vals holds an envelope
	// record's spans while it is resolved.
	notes notes
	vals  []span

	// Decoded escaped strings: one buffer per field, so that the tenant
	// survives decoding the source; key for object keys.
	tenantBuf, sourceBuf, timeBuf, keyBuf []byte
}

// recordSpec says how to resolve the three fields of one kind of record.
type recordSpec struct {
	keys           keySet // every top-level key the paths need
	tenant, source nameSpec
	time           timeSpec
}

// nameSpec resolves a tenant or a source.
type nameSpec struct {
	label      string       // "tenant" or "source"
	paths      []string     // tried in order, first present wins
	lookups    []keyPath    // by path
	derived    *derivedName // then a name derived from another field (Azure resourceId, GCP logName)
	constant   []byte       // then, if set, this value
	badConst   string       // why constant is not acceptable (too long for MaxNameBytes), or ""
	missing    Reason
	bad        Reason
	missingMsg string // detail when nothing is present
}

// timeSpec resolves the event time.
type timeSpec struct {
	paths      []string
	lookups    []keyPath
	missingMsg string
	monthFirst bool     // the .NET month-first forms too (Azure records: parseMonthFirst)
	layouts    []string // then these Go layouts (FieldConfig.TimeLayouts)
}

// New returns a decoder for cfg, after applying WithDefaults and Validate.
func New(cfg FieldConfig) (*Decoder, error) {
	userTenant := customPaths(cfg.Tenant, defaultTenantPaths)
	userSource := customPaths(cfg.Source, defaultSourcePaths)
	userTime := customPaths(cfg.Time, defaultTimePaths)

	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Decoder{
		maxMessage: min(cfg.MaxMessageBytes, math.MaxInt32), // the notes hold int32 offsets
		maxName:    cfg.MaxNameBytes,
		envelopes:  cfg.Format == FormatAuto,
		format:     cfg.Format,
	}
	n := &d.notes
	n.azureKey, n.cloudTrailKey = -1, -1
	var fixed []byte
	if cfg.FixedSource != "" {
		fixed = []byte(cfg.FixedSource)
	}
	d.fixedSource = fixed
	var err error
	if d.mapping, err = newMapping(cfg); err != nil {
		return nil, err
	}

	p := &d.plain
	p.tenant = newNameSpec(&p.keys, "tenant", slices.Clone(cfg.Tenant), nil)
	if fixed != nil {
		p.source = newNameSpec(&p.keys, "source", nil, fixed)
	} else {
		p.source = newNameSpec(&p.keys, "source", slices.Clone(cfg.Source), nil)
	}
	p.time = newTimeSpec(&p.keys, slices.Clone(cfg.Time))
	if d.envelopes {
		n.azureKey = p.keys.add("records")
		n.cloudTrailKey = p.keys.add("Records")
	}

	a := &d.azure
	a.tenant = newNameSpec(&a.keys, "tenant", append(userTenant, "tenantId"), nil)
	a.tenant.derived = &derivedName{field: "resourceId", key: a.keys.add("resourceId"),
		want: "/tenants/ or /subscriptions/ segment", fn: resourceTenant}
	a.tenant.missingMsg = "no tenant field among " + listPaths(append(a.tenant.paths, "resourceId"))
	a.source = newNameSpec(&a.keys, "source", append(userSource, "category"), nil)
	a.time = newTimeSpec(&a.keys, append(userTime, "time"))
	a.time.monthFirst = true

	c := &d.cloudTrail
	c.tenant = newNameSpec(&c.keys, "tenant", append(userTenant, "recipientAccountId", "userIdentity.accountId"), nil)
	if fixed != nil {
		c.source = newNameSpec(&c.keys, "source", nil, fixed)
	} else {
		c.source = newNameSpec(&c.keys, "source", userSource, []byte(cloudTrailSource))
		if why := checkName(c.source.constant, d.maxName); why != "" {
			c.source.badConst = "source " + why + " (max_name_bytes)"
		}
	}
	c.time = newTimeSpec(&c.keys, append(userTime, "eventTime"))

	for _, s := range []*recordSpec{p, a, c} {
		s.time.layouts = slices.Clone(cfg.TimeLayouts)
	}
	d.initObjects(userTenant, userSource, userTime)
	d.otlpSpec = newOTLPSpec(&p.keys, userTenant, userSource)
	n.top, n.topKeys = make([]span, len(p.keys.names)), &p.keys
	n.azure.keys, n.cloudTrail.keys = &a.keys, &c.keys
	d.vals = make([]span, max(len(a.keys.names), len(c.keys.names)))
	return d, nil
}

// customPaths returns a copy of paths when they differ from the defaults
// (the user configured them), else nil.
func customPaths(paths, defaults []string) []string {
	if len(paths) == 0 || slices.Equal(paths, defaults) {
		return nil
	}
	return slices.Clip(slices.Clone(paths))
}

func newNameSpec(keys *keySet, label string, paths []string, constant []byte) nameSpec {
	s := nameSpec{label: label, paths: slices.Clip(paths), lookups: lookupsOf(keys, paths), constant: constant}
	if label == "tenant" {
		s.missing, s.bad = ReasonMissingTenant, ReasonBadTenant
	} else {
		s.missing, s.bad = ReasonMissingSource, ReasonBadSource
	}
	s.missingMsg = "no " + label + " field among " + listPaths(paths)
	return s
}

func newTimeSpec(keys *keySet, paths []string) timeSpec {
	return timeSpec{paths: slices.Clip(paths), lookups: lookupsOf(keys, paths), missingMsg: "no time field among " + listPaths(paths)}
}

func lookupsOf(keys *keySet, paths []string) []keyPath {
	out := make([]keyPath, len(paths))
	for i, p := range paths {
		out[i] = keys.path(p)
	}
	return out
}

func listPaths(paths []string) string {
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
	return d.DecodeAt(value, time.Time{}, emit, reject)
}

// DecodeAt is Decode for a message that arrived at arrival (its Kafka
// record time): an RFC 3164 syslog time, which has no year, is put in the
// year nearest to it. Decode uses the wall clock.
func (d *Decoder) DecodeAt(value []byte, arrival time.Time, emit func(Event), reject func(reason Reason, detail string)) (events, rejected int) {
	if len(value) > d.maxMessage {
		rejectClipped(reject, ReasonOversized, fmt.Sprintf("message is %d bytes, limit %d", len(value), d.maxMessage))
		return 0, 1
	}
	switch d.format {
	case FormatAuto:
		if kind := lineOf(value); kind != lineNone {
			if !utf8.Valid(value) {
				rejectClipped(reject, ReasonInvalidUTF8, fmt.Sprintf("invalid UTF-8 at byte %d", invalidUTF8At(value)))
				return 0, 1
			}
			return d.line(value, kind, arrival, emit, reject)
		}
	case FormatSyslog, FormatCEF:
		kind := lineOf(value)
		if kind == lineNone || d.format == FormatCEF && kind == lineSyslog && bytes.Index(value, []byte(" CEF:")) < 0 {
			rejectClipped(reject, ReasonMissingEnvelope, string(d.format)+": not a "+string(d.format)+" line"+near(value, 0))
			return 0, 1
		}
		if !utf8.Valid(value) {
			rejectClipped(reject, ReasonInvalidUTF8, fmt.Sprintf("invalid UTF-8 at byte %d", invalidUTF8At(value)))
			return 0, 1
		}
		return d.line(value, kind, arrival, emit, reject)
	}
	// One walk checks the message strictly (RFC 8259) and notes where the
	// values the paths name are (notes). It also checks UTF-8 (only strings
	// may hold non-ASCII bytes): a message that passes is valid UTF-8, and one
	// that fails is looked at again to give invalid UTF-8 anywhere precedence
	// as the reason. Nothing is resolved before the whole message is known to
	// be valid.
	n := &d.notes
	n.reset()
	if pos, why := walk(value, n); why != "" {
		if !utf8.Valid(value) {
			rejectClipped(reject, ReasonInvalidUTF8, fmt.Sprintf("invalid UTF-8 at byte %d", invalidUTF8At(value)))
			return 0, 1
		}
		rejectClipped(reject, ReasonInvalidJSON, "invalid JSON at byte "+strconv.Itoa(pos)+": "+why+near(value, pos))
		return 0, 1
	}
	b := value
	if i := skipWS(b, 0); b[i] != '{' {
		rejectClipped(reject, ReasonNotObject, "top-level value is "+typeName(b[i])+", want an object")
		return 0, 1
	}
	// The first "records" if it is an array, else the first "Records" if it
	// is an array, else a plain event.
	switch {
	case n.azure.found:
		return d.envelope(b, "records", &d.azure, &n.azure, emit, reject)
	case n.cloudTrail.found:
		return d.envelope(b, "Records", &d.cloudTrail, &n.cloudTrail, emit, reject)
	}
	if d.format == FormatAuto || d.format == FormatOTLP {
		if v := n.top[d.otlpSpec.key].start; v != 0 && b[v] == '[' {
			return d.otlp(b, v, emit, reject)
		}
		if d.format == FormatOTLP {
			rejectClipped(reject, ReasonMissingEnvelope, "otlp: no resourceLogs array")
			return 0, 1
		}
	}
	if d.record(b, n.top, -1, d.objectSpec(b), emit, reject) {
		return 1, 0
	}
	return 0, 1
}

// envelope decodes the records of an envelope array (under key), as noted
// in e, and returns the counts.
func (d *Decoder) envelope(b []byte, key string, spec *recordSpec, e *envelopeNotes, emit func(Event), reject func(Reason, string)) (events, rejected int) {
	if len(e.elems) == 0 {
		rejectClipped(reject, ReasonEmptyEnvelope, key+" array is empty")
		return 0, 1
	}
	m := len(spec.keys.names)
	vals := d.vals[:m]
	for n, at := range e.elems {
		if b[at] != '{' {
			rejectClipped(reject, ReasonNotObject, recordPrefix(n)+"value is "+typeName(b[at])+", want an object")
			rejected++
			continue
		}
		for k, v := range e.vals[n*m : (n+1)*m] {
			vals[k] = span{start: int(v)}
		}
		if d.record(b, vals, n, spec, emit, reject) {
			events++
		} else {
			rejected++
		}
	}
	return events, rejected
}

// record resolves one object record, whose values by key index vals holds,
// and emits or rejects it; index is its place in an envelope, or -1 for a
// plain event. It reports whether it emitted.
func (d *Decoder) record(b []byte, vals []span, index int, spec *recordSpec, emit func(Event), reject func(Reason, string)) bool {
	var tenant []byte
	var reason Reason
	var detail string
	if d.mapping.fixedTenant == nil {
		tenant, reason, detail = d.name(b, vals, &spec.tenant, &d.tenantBuf)
	}
	if reason == "" {
		var source []byte
		source, reason, detail = d.name(b, vals, &spec.source, &d.sourceBuf)
		if reason == "" {
			var t time.Time
			t, reason, detail = d.eventTime(b, vals, &spec.time)
			if reason == "" && d.mapping.active() {
				tenant, source, reason, detail = d.mapNames(tenant, source)
			}
			if reason == "" {
				if emit != nil {
					emit(Event{Tenant: tenant, Source: source, Time: t})
				}
				return true
			}
		}
	}
	if index >= 0 {
		detail = recordPrefix(index) + detail
	}
	rejectClipped(reject, reason, detail)
	return false
}

// name resolves a tenant or source. On failure it returns the reason and a
// detail; scratch is the buffer for the value if it has escapes.
func (d *Decoder) name(b []byte, vals []span, spec *nameSpec, scratch *[]byte) ([]byte, Reason, string) {
	for i := range spec.lookups {
		v, ok := d.lookup(b, vals, &spec.lookups[i])
		if !ok {
			continue
		}
		var s []byte
		switch c := b[v.start]; {
		case c == '"':
			s = stringText(b, v, scratch)
		case c == '-' || c >= '0' && c <= '9':
			s = b[v.start:numberEnd(b, v.start)]
			if !isInteger(s) {
				return nil, spec.bad, spec.label + " field " + spec.paths[i] + " is the number " + excerpt(s) + ", want a string or a non-negative integer"
			}
		default:
			return nil, spec.bad, spec.label + " field " + spec.paths[i] + " is " + typeName(c) + ", want a string"
		}
		if why := checkName(s, d.maxName); why != "" {
			return nil, spec.bad, spec.label + " field " + spec.paths[i] + " " + why
		}
		return s, "", ""
	}
	if dn := spec.derived; dn != nil {
		if v := vals[dn.key]; v.present(b) {
			if c := b[v.start]; c != '"' {
				return nil, spec.bad, spec.label + " field " + dn.field + " is " + typeName(c) + ", want a string"
			}
			raw := stringText(b, v, scratch)
			seg, ok := dn.fn(raw, scratch)
			if !ok {
				return nil, spec.missing, "no " + spec.label + " field among " + listPaths(spec.paths) +
					" and no " + dn.want + " in " + dn.field + " " + excerpt(raw)
			}
			if why := checkName(seg, d.maxName); why != "" {
				return nil, spec.bad, spec.label + " from " + dn.field + " " + excerpt(raw) + " " + why
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
func (d *Decoder) eventTime(b []byte, vals []span, spec *timeSpec) (time.Time, Reason, string) {
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
			text = stringText(b, v, &d.timeBuf)
			t, ok = spec.parseText(text)
		case c == '-' || c >= '0' && c <= '9':
			text = b[v.start:numberEnd(b, v.start)]
			t, ok = parseEpoch(text)
		default:
			return time.Time{}, ReasonBadTime, "time field " + spec.paths[i] + " is " + typeName(c) + ", want a string or a number"
		}
		if !ok {
			return time.Time{}, ReasonBadTime, "time field " + spec.paths[i] + " " + excerpt(text) + " is not a recognised timestamp between 1971 and 2200"
		}
		return t, "", ""
	}
	return time.Time{}, ReasonMissingTime, spec.missingMsg
}

// lookup returns the present (non-null) value at path p of a record, whose
// values by key index vals holds: first by walking nested objects, then as
// one literal key of the record.
func (d *Decoder) lookup(b []byte, vals []span, p *keyPath) (span, bool) {
	v := vals[p.key]
	if p.rest == nil {
		return v, v.present(b)
	}
	for _, key := range p.rest {
		if v.start == 0 || b[v.start] != '{' {
			v = span{}
			break
		}
		v = span{start: objectGet(b, v.start, key, &d.keyBuf)}
	}
	if v.present(b) {
		return v, true
	}
	v = vals[p.literal]
	return v, v.present(b)
}

// parseText parses a time string: the forms ParseTime documents, then the
// spec's own (month-first, layouts).
func (spec *timeSpec) parseText(text []byte) (time.Time, bool) {
	if t, ok := parseTimeText(text); ok {
		return t, true
	}
	if spec.monthFirst {
		if t, ok := parseMonthFirst(text); ok {
			return t, true
		}
	}
	for _, l := range spec.layouts {
		if t, err := time.Parse(l, string(text)); err == nil {
			if u := t.Unix(); u >= minUnix && u < maxUnix {
				return t.UTC(), true
			}
		}
	}
	return time.Time{}, false
}
