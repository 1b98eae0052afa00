package decode

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// refDecoder is the decoder as it was before the lazy extractor: strict
// validation, then a full fastjson tree and lookups in it. Tests compare
// Decoder against it.
//
// It differs from that code in one respect: refGet unescapes an object's
// keys before it looks a key up. fastjson's Object.Get first compares the
// raw (still escaped) keys and only unescapes when none matches, so with
// duplicate keys it picked a later plain "tenant" over an earlier
// "ten\u0061nt", and whether it did depended on the lookups made before on
// the same object. Unescaping first gives what FieldConfig documents: the
// first occurrence counts.
type refDecoder struct {
	maxMessage int
	maxName    int
	envelopes  bool

	parser fastjson.Parser

	plain, azure, cloudTrail refRecordSpec

	tenantNum, sourceNum, timeNum []byte
}

type refRecordSpec struct {
	tenant, source refNameSpec
	time           refTimeSpec
}

type refNameSpec struct {
	label      string
	paths      []string
	dotted     []bool
	resourceID bool
	constant   []byte
	badConst   string
	missing    Reason
	bad        Reason
	missingMsg string
}

type refTimeSpec struct {
	paths      []string
	dotted     []bool
	missingMsg string
}

func newRefDecoder(cfg FieldConfig) (*refDecoder, error) {
	userTenant := customPaths(cfg.Tenant, defaultTenantPaths)
	userSource := customPaths(cfg.Source, defaultSourcePaths)
	userTime := customPaths(cfg.Time, defaultTimePaths)

	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &refDecoder{
		maxMessage: cfg.MaxMessageBytes,
		maxName:    cfg.MaxNameBytes,
		envelopes:  cfg.Format == FormatAuto,
	}
	var fixed []byte
	if cfg.FixedSource != "" {
		fixed = []byte(cfg.FixedSource)
	}

	d.plain.tenant = refNewNameSpec("tenant", cfg.Tenant, nil)
	if fixed != nil {
		d.plain.source = refNewNameSpec("source", nil, fixed)
	} else {
		d.plain.source = refNewNameSpec("source", cfg.Source, nil)
	}
	d.plain.time = refNewTimeSpec(cfg.Time)

	d.azure.tenant = refNewNameSpec("tenant", append(userTenant, "tenantId"), nil)
	d.azure.tenant.resourceID = true
	d.azure.tenant.missingMsg = "no tenant field among " + listPaths(append(d.azure.tenant.paths, "resourceId"))
	d.azure.source = refNewNameSpec("source", append(userSource, "category"), nil)
	d.azure.time = refNewTimeSpec(append(userTime, "time"))

	d.cloudTrail.tenant = refNewNameSpec("tenant", append(userTenant, "recipientAccountId", "userIdentity.accountId"), nil)
	if fixed != nil {
		d.cloudTrail.source = refNewNameSpec("source", nil, fixed)
	} else {
		d.cloudTrail.source = refNewNameSpec("source", userSource, []byte(cloudTrailSource))
		if why := checkName(d.cloudTrail.source.constant, d.maxName); why != "" {
			d.cloudTrail.source.badConst = "source " + why + " (max_name_bytes)"
		}
	}
	d.cloudTrail.time = refNewTimeSpec(append(userTime, "eventTime"))
	return d, nil
}

func refNewNameSpec(label string, paths []string, constant []byte) refNameSpec {
	paths = append([]string(nil), paths...)
	s := refNameSpec{label: label, paths: paths, dotted: refDotted(paths), constant: constant}
	if label == "tenant" {
		s.missing, s.bad = ReasonMissingTenant, ReasonBadTenant
	} else {
		s.missing, s.bad = ReasonMissingSource, ReasonBadSource
	}
	s.missingMsg = "no " + label + " field among " + listPaths(paths)
	return s
}

func refNewTimeSpec(paths []string) refTimeSpec {
	paths = append([]string(nil), paths...)
	return refTimeSpec{paths: paths, dotted: refDotted(paths), missingMsg: "no time field among " + listPaths(paths)}
}

func refDotted(paths []string) []bool {
	out := make([]bool, len(paths))
	for i, p := range paths {
		out[i] = strings.IndexByte(p, '.') >= 0
	}
	return out
}

func (d *refDecoder) Decode(value []byte, emit func(Event), reject func(reason Reason, detail string)) (events, rejected int) {
	if len(value) > d.maxMessage {
		rejectClipped(reject, ReasonOversized, fmt.Sprintf("message is %d bytes, limit %d", len(value), d.maxMessage))
		return 0, 1
	}
	if pos, why := validJSON(value); why != "" {
		if !utf8.Valid(value) {
			rejectClipped(reject, ReasonInvalidUTF8, fmt.Sprintf("invalid UTF-8 at byte %d", invalidUTF8At(value)))
			return 0, 1
		}
		rejectClipped(reject, ReasonInvalidJSON, "invalid JSON at byte "+strconv.Itoa(pos)+": "+why+near(value, pos))
		return 0, 1
	}
	root, err := d.parser.ParseBytes(value)
	if err != nil {
		rejectClipped(reject, ReasonInvalidJSON, "invalid JSON: "+refJSONError(err))
		return 0, 1
	}
	if root.Type() != fastjson.TypeObject {
		rejectClipped(reject, ReasonNotObject, "top-level value is "+refTypeName(root.Type())+", want an object")
		return 0, 1
	}
	if d.envelopes {
		if recs := refGet(root, "records"); recs != nil && recs.Type() == fastjson.TypeArray {
			return d.envelope(recs, "records", &d.azure, emit, reject)
		}
		if recs := refGet(root, "Records"); recs != nil && recs.Type() == fastjson.TypeArray {
			return d.envelope(recs, "Records", &d.cloudTrail, emit, reject)
		}
	}
	if d.record(root, -1, &d.plain, emit, reject) {
		return 1, 0
	}
	return 0, 1
}

func (d *refDecoder) envelope(recs *fastjson.Value, key string, spec *refRecordSpec, emit func(Event), reject func(Reason, string)) (events, rejected int) {
	arr, _ := recs.Array()
	if len(arr) == 0 {
		rejectClipped(reject, ReasonEmptyEnvelope, key+" array is empty")
		return 0, 1
	}
	for i, rec := range arr {
		if t := rec.Type(); t != fastjson.TypeObject {
			rejectClipped(reject, ReasonNotObject, recordPrefix(i)+"value is "+refTypeName(t)+", want an object")
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

func (d *refDecoder) record(rec *fastjson.Value, index int, spec *refRecordSpec, emit func(Event), reject func(Reason, string)) bool {
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
		detail = recordPrefix(index) + detail
	}
	rejectClipped(reject, reason, detail)
	return false
}

func (d *refDecoder) name(rec *fastjson.Value, spec *refNameSpec, num *[]byte) ([]byte, Reason, string) {
	for i, path := range spec.paths {
		v := refLookup(rec, path, spec.dotted[i])
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
			if !isInteger(b) {
				return nil, spec.bad, spec.label + " field " + path + " is the number " + excerpt(b) + ", want a string or a non-negative integer"
			}
		default:
			return nil, spec.bad, spec.label + " field " + path + " is " + refTypeName(v.Type()) + ", want a string"
		}
		if why := checkName(b, d.maxName); why != "" {
			return nil, spec.bad, spec.label + " field " + path + " " + why
		}
		return b, "", ""
	}
	if spec.resourceID {
		if v := refGet(rec, "resourceId"); v != nil {
			if v.Type() != fastjson.TypeString {
				return nil, spec.bad, spec.label + " field resourceId is " + refTypeName(v.Type()) + ", want a string"
			}
			rid, _ := v.StringBytes()
			seg, ok := resourceTenant(rid, nil)
			if !ok {
				return nil, spec.missing, "no " + spec.label + " field among " + listPaths(spec.paths) +
					" and no /tenants/ or /subscriptions/ segment in resourceId " + excerpt(rid)
			}
			if why := checkName(seg, d.maxName); why != "" {
				return nil, spec.bad, spec.label + " from resourceId " + excerpt(rid) + " " + why
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

func (d *refDecoder) eventTime(rec *fastjson.Value, spec *refTimeSpec) (time.Time, Reason, string) {
	for i, path := range spec.paths {
		v := refLookup(rec, path, spec.dotted[i])
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
			t, ok = parseTimeText(text)
		case fastjson.TypeNumber:
			d.timeNum = v.MarshalTo(d.timeNum[:0])
			text = d.timeNum
			t, ok = parseEpoch(text)
		default:
			return time.Time{}, ReasonBadTime, "time field " + path + " is " + refTypeName(v.Type()) + ", want a string or a number"
		}
		if !ok {
			return time.Time{}, ReasonBadTime, "time field " + path + " " + excerpt(text) + " is not a recognised timestamp between 1971 and 2200"
		}
		return t, "", ""
	}
	return time.Time{}, ReasonMissingTime, spec.missingMsg
}

func refLookup(rec *fastjson.Value, path string, dotted bool) *fastjson.Value {
	if !dotted {
		return refGet(rec, path)
	}
	v := rec
	rest := path
	for v != nil {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			if v = refGet(v, rest); v != nil {
				return v
			}
			break
		}
		v = refGet(v, rest[:i])
		rest = rest[i+1:]
	}
	return refGet(rec, path)
}

// refGet returns the non-null value of key in object v, or nil. Visit
// unescapes the object's keys, so Get finds the first occurrence.
func refGet(v *fastjson.Value, key string) *fastjson.Value {
	if v.Type() != fastjson.TypeObject {
		return nil
	}
	obj, _ := v.Object()
	obj.Visit(func([]byte, *fastjson.Value) {})
	r := obj.Get(key)
	if r == nil || r.Type() == fastjson.TypeNull {
		return nil
	}
	return r
}

func refJSONError(err error) string {
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
	return clip(msg, 160)
}

func refTypeName(t fastjson.Type) string {
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
