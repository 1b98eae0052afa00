package decode

import (
	"slices"
	"time"
)

// OTLP/JSON logs, as the OpenTelemetry Collector's exporters write an
// ExportLogsServiceRequest: {"resourceLogs":[{"resource":{"attributes":[…]},
// "scopeLogs":[{"logRecords":[…]}]}]}. Every log record counts. Tenant and
// source are resource attributes ({"key":"service.name","value":
// {"stringValue":"…"}}; an intValue is taken as its decimal text): tenant
// tenant.id, else cloud.account.id, else service.namespace; source
// service.name; a topic's own tenant and source paths name attributes tried
// first. Time is the record's timeUnixNano, else — absent or "0", which OTLP
// defines as unknown — its observedTimeUnixNano.
type otlpSpec struct {
	key                  int      // index of "resourceLogs" in the plain record's keys
	tenantAttrs, srcAttr []string // resource attribute keys, in order
}

func newOTLPSpec(keys *keySet, userTenant, userSource []string) otlpSpec {
	return otlpSpec{
		key:         keys.add("resourceLogs"),
		tenantAttrs: append(slices.Clone(userTenant), "tenant.id", "cloud.account.id", "service.namespace"),
		srcAttr:     append(slices.Clone(userSource), "service.name"),
	}
}

// otlp decodes the log records of the resourceLogs array at b[i].
func (d *Decoder) otlp(b []byte, i int, emit func(Event), reject func(Reason, string)) (events, rejected int) {
	spec := &d.otlpSpec
	n := 0 // records so far: their number in details
	for rl := firstElem(b, i); rl >= 0; rl = nextElem(b, rl) {
		var tenant, source []byte
		var reason Reason
		var detail string
		if b[rl] != '{' {
			reason, detail = ReasonNotObject, "resourceLogs element is "+typeName(b[rl])+", want an object"
		} else {
			attrs := 0
			if res := objectGet(b, rl, "resource", &d.keyBuf); res > 0 && b[res] == '{' {
				attrs = objectGet(b, res, "attributes", &d.keyBuf)
			}
			if d.mapping.fixedTenant == nil {
				tenant, reason, detail = d.attribute(b, attrs, "tenant", spec.tenantAttrs, &d.tenantBuf)
			}
			if reason == "" {
				source, reason, detail = d.attribute(b, attrs, "source", spec.srcAttr, &d.sourceBuf)
			}
			if reason == "" && d.mapping.active() {
				tenant, source, reason, detail = d.mapNames(tenant, source)
			}
		}
		scopes := 0
		if b[rl] == '{' {
			scopes = objectGet(b, rl, "scopeLogs", &d.keyBuf)
		}
		if scopes == 0 || b[scopes] != '[' {
			continue
		}
		for sl := firstElem(b, scopes); sl >= 0; sl = nextElem(b, sl) {
			records := 0
			if b[sl] == '{' {
				records = objectGet(b, sl, "logRecords", &d.keyBuf)
			}
			if records == 0 || b[records] != '[' {
				continue
			}
			for lr := firstElem(b, records); lr >= 0; lr = nextElem(b, lr) {
				switch {
				case reason != "":
					rejectClipped(reject, reason, recordPrefix(n)+detail)
					rejected++
				case b[lr] != '{':
					rejectClipped(reject, ReasonNotObject, recordPrefix(n)+"logRecords element is "+typeName(b[lr])+", want an object")
					rejected++
				default:
					t, why, text := d.otlpTime(b, lr)
					if why != "" {
						rejectClipped(reject, why, recordPrefix(n)+text)
						rejected++
						break
					}
					if emit != nil {
						emit(Event{Tenant: tenant, Source: source, Time: t})
					}
					events++
				}
				n++
			}
		}
	}
	if n == 0 {
		rejectClipped(reject, ReasonEmptyEnvelope, "resourceLogs holds no logRecords")
		return 0, 1
	}
	return events, rejected
}

// attribute returns the first of keys among the OTLP attributes array at
// b[attrs] (0: none), checked as a name.
func (d *Decoder) attribute(b []byte, attrs int, label string, keys []string, scratch *[]byte) ([]byte, Reason, string) {
	missing, bad := ReasonMissingTenant, ReasonBadTenant
	if label == "source" {
		missing, bad = ReasonMissingSource, ReasonBadSource
	}
	if attrs > 0 && b[attrs] == '[' {
		for _, want := range keys {
			for a := firstElem(b, attrs); a >= 0; a = nextElem(b, a) {
				if b[a] != '{' {
					continue
				}
				k := objectGet(b, a, "key", &d.keyBuf)
				if k == 0 || b[k] != '"' || string(stringText(b, span{start: k}, &d.keyBuf)) != want {
					continue
				}
				v := objectGet(b, a, "value", &d.keyBuf)
				s := 0
				if v > 0 && b[v] == '{' {
					if s = objectGet(b, v, "stringValue", &d.keyBuf); s == 0 {
						s = objectGet(b, v, "intValue", &d.keyBuf)
					}
				}
				if s == 0 || b[s] != '"' && !(b[s] >= '0' && b[s] <= '9') {
					return nil, bad, "otlp " + label + " attribute " + want + " has no stringValue"
				}
				var name []byte
				if b[s] == '"' {
					name = stringText(b, span{start: s}, scratch)
				} else {
					name = b[s:numberEnd(b, s)]
				}
				if why := checkName(name, d.maxName); why != "" {
					return nil, bad, "otlp " + label + " attribute " + want + " " + why
				}
				return name, "", ""
			}
		}
	}
	return nil, missing, "no otlp resource attribute among " + listPaths(keys) + " for the " + label
}

// otlpTime reads a log record's timeUnixNano, else its observedTimeUnixNano.
func (d *Decoder) otlpTime(b []byte, lr int) (time.Time, Reason, string) {
	for _, key := range [...]string{"timeUnixNano", "observedTimeUnixNano"} {
		v := objectGet(b, lr, key, &d.keyBuf)
		if v == 0 || b[v] == 'n' {
			continue
		}
		var text []byte
		switch c := b[v]; {
		case c == '"':
			text = stringText(b, span{start: v}, &d.timeBuf)
		case c >= '0' && c <= '9':
			text = b[v:numberEnd(b, v)]
		default:
			return time.Time{}, ReasonBadTime, "otlp " + key + " is " + typeName(c) + ", want a string of nanoseconds"
		}
		if len(text) == 1 && text[0] == '0' {
			continue // unknown: the observed time then
		}
		t, ok := parseEpoch(text)
		if !ok {
			return time.Time{}, ReasonBadTime, "otlp " + key + " " + excerpt(text) + " is not nanoseconds since the epoch between 1971 and 2200"
		}
		return t, "", ""
	}
	return time.Time{}, ReasonMissingTime, "otlp log record has neither timeUnixNano nor observedTimeUnixNano"
}

// firstElem returns where the first element of the array at b[i] starts,
// or -1 if it is empty.
func firstElem(b []byte, i int) int {
	i = skipWS(b, i+1)
	if b[i] == ']' {
		return -1
	}
	return i
}

// nextElem returns where the element after the one at b[i] starts, or -1
// after the last.
func nextElem(b []byte, i int) int {
	i = skipWS(b, skipValue(b, i))
	if b[i] == ']' {
		return -1
	}
	return skipWS(b, i+1)
}
