package decode

import (
	"bytes"
	"time"
)

// Lines from syslog shippers (rsyslog, syslog-ng, appliances) and CEF, one
// per message (a trailing newline is ignored):
//
//   - RFC 5424: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG].
//     Tenant HOSTNAME, source APP-NAME, time TIMESTAMP (RFC 3339); "-" (nil)
//     is missing.
//   - RFC 3164: <PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MSG, also without <PRI>
//     (traditional file format). Tenant HOSTNAME, source TAG — up to the
//     first '[', ':' or space, as rsyslog and syslog-ng read it — and time
//     the TIMESTAMP, which has no year or zone: UTC, in the year that puts it
//     nearest the message's arrival.
//   - rsyslog omkafka's and syslog-ng's kafka destination's default lines:
//     "<RFC 3339 time> HOSTNAME TAG: MSG", no PRI. As 3164, with a full time.
//   - CEF (ArcSight Common Event Format), bare or after any syslog header
//     above: CEF:Version|Vendor|Product|Version|Signature|Name|Severity|
//     Extension. Tenant the syslog HOSTNAME, else the extension's dvchost;
//     source Device Product; time the extension's rt (epoch milliseconds,
//     or "Mmm dd yyyy hh:mm:ss[.SSS]"), else the syslog TIMESTAMP.
//
// A topic's fixed_source applies to every line. Names pass the same checks
// as JSON ones.

// lineKind says which line format a message is in; lineNone for JSON.
type lineKind uint8

const (
	lineNone lineKind = iota
	lineSyslog
	lineCEF
)

// lineOf tells a syslog or CEF line from JSON by its first bytes.
func lineOf(b []byte) lineKind {
	switch {
	case len(b) == 0:
		return lineNone
	case b[0] == '<':
		return lineSyslog
	case bytes.HasPrefix(b, []byte("CEF:")):
		return lineCEF
	case len(b) >= 11 && b[4] == '-' && b[7] == '-' && (b[10] == 'T' || b[10] == ' ') && isDigit(b[0]):
		return lineSyslog // rsyslog / syslog-ng: an RFC 3339 time first
	case len(b) >= 16 && monthIndex(b) >= 0 && b[3] == ' ':
		return lineSyslog // RFC 3164 without PRI
	}
	return lineNone
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// monthIndex returns the month (0–11) of an English three-letter month
// abbreviation at the start of b, or -1.
func monthIndex(b []byte) int {
	if len(b) < 3 {
		return -1
	}
	for i, m := range monthNames {
		if lower(b[0]) == m[0] && lower(b[1]) == m[1] && lower(b[2]) == m[2] {
			return i
		}
	}
	return -1
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// syslogHeader is what a syslog header holds; its slices alias the line.
type syslogHeader struct {
	host, app []byte
	time      time.Time
	timeText  []byte // as written, for details
	timeOK    bool
	rest      []byte // what follows the HOSTNAME (3164, PRI-less) or MSGID (5424): where a CEF line may be
}

// line decodes one syslog or CEF line.
func (d *Decoder) line(b []byte, kind lineKind, arrival time.Time, emit func(Event), reject func(Reason, string)) (events, rejected int) {
	b = bytes.TrimRight(b, "\r\n")
	var h syslogHeader
	format := "syslog"
	if kind == lineSyslog {
		var why string
		if h, why = parseSyslogHeader(b, arrival); why != "" {
			rejectClipped(reject, ReasonBadSyslog, "syslog: "+why+near(b, 0))
			return 0, 1
		}
		if i := bytes.Index(h.rest, []byte("CEF:")); i >= 0 && (i == 0 || h.rest[i-1] == ' ') {
			kind, b = lineCEF, h.rest[i:]
		}
	}
	tenant, source := h.host, h.app
	tenantField, sourceField, timeField := "HOSTNAME", "APP-NAME/TAG", "TIMESTAMP"
	t, timeOK, timeText := h.time, h.timeOK, h.timeText
	if kind == lineCEF {
		format = "cef"
		c, why := parseCEF(b)
		if why != "" {
			rejectClipped(reject, ReasonBadCEF, "cef: "+why)
			return 0, 1
		}
		source, sourceField = c.product, "Device Product"
		if len(tenant) == 0 {
			tenant, tenantField = c.ext("dvchost"), "dvchost"
		}
		if rt := c.ext("rt"); rt != nil || len(timeText) == 0 {
			timeText, timeField = rt, "rt"
			t, timeOK = parseCEFTime(rt)
		}
	}
	if d.fixedSource != nil {
		source, sourceField = d.fixedSource, "fixed_source"
	}
	if d.mapping.fixedTenant != nil {
		tenant, tenantField = d.mapping.fixedTenant, "fixed_tenant"
	}
	tenantWhy, sourceWhy := "", ""
	if len(tenant) > 0 {
		tenantWhy = checkName(tenant, d.maxName)
	}
	if len(source) > 0 {
		sourceWhy = checkName(source, d.maxName)
	}
	switch {
	case len(tenant) == 0:
		rejectClipped(reject, ReasonMissingTenant, format+": no "+tenantField)
	case tenantWhy != "":
		rejectClipped(reject, ReasonBadTenant, format+": tenant field "+tenantField+" "+tenantWhy)
	case len(source) == 0:
		rejectClipped(reject, ReasonMissingSource, format+": no "+sourceField)
	case sourceWhy != "":
		rejectClipped(reject, ReasonBadSource, format+": source field "+sourceField+" "+sourceWhy)
	case len(timeText) == 0:
		rejectClipped(reject, ReasonMissingTime, format+": no "+timeField)
	case !timeOK:
		rejectClipped(reject, ReasonBadTime, format+": time field "+timeField+" "+excerpt(timeText)+" is not a recognised timestamp between 1971 and 2200")
	default:
		if d.mapping.active() {
			var reason Reason
			var detail string
			if tenant, source, reason, detail = d.mapNames(tenant, source); reason != "" {
				rejectClipped(reject, reason, format+": "+detail)
				return 0, 1
			}
		}
		if emit != nil {
			emit(Event{Tenant: tenant, Source: source, Time: t})
		}
		return 1, 0
	}
	return 0, 1
}

// parseSyslogHeader reads the header of an RFC 5424, RFC 3164 or PRI-less
// line; why says what is wrong with it.
func parseSyslogHeader(b []byte, arrival time.Time) (h syslogHeader, why string) {
	i := 0
	if b[0] == '<' {
		j, pri := 1, 0
		for j < len(b) && j <= 4 && isDigit(b[j]) {
			pri = pri*10 + int(b[j]-'0')
			j++
		}
		if j == 1 || j >= len(b) || b[j] != '>' || pri > 191 {
			return h, "PRI is not <0> to <191>"
		}
		i = j + 1
		if i+1 < len(b) && b[i] == '1' && b[i+1] == ' ' { // RFC 5424
			return parse5424(b[i+2:])
		}
	}
	rest := b[i:]
	if len(rest) >= 15 && monthIndex(rest) >= 0 && rest[3] == ' ' { // RFC 3164
		h.timeText = rest[:15]
		h.time, h.timeOK = parse3164Time(rest[:15], arrival)
		rest = rest[15:]
	} else { // an RFC 3339 time
		sp := bytes.IndexByte(rest, ' ')
		if sp < 0 {
			return h, "no HOSTNAME after the time"
		}
		h.timeText = rest[:sp]
		h.time, h.timeOK = parseTimeText(rest[:sp])
		rest = rest[sp:]
	}
	if len(rest) == 0 || rest[0] != ' ' {
		return h, "no space after the time"
	}
	rest = rest[1:]
	sp := bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return h, "no TAG after the HOSTNAME"
	}
	h.host, rest = rest[:sp], rest[sp+1:]
	end := bytes.IndexAny(rest, "[: ")
	if end < 0 {
		end = len(rest)
	}
	h.app, h.rest = rest[:end], rest
	return h, ""
}

// parse5424 reads an RFC 5424 header after "<PRI>1 ".
func parse5424(b []byte) (h syslogHeader, why string) {
	var f [5][]byte // TIMESTAMP HOSTNAME APP-NAME PROCID MSGID
	for k := range f {
		sp := bytes.IndexByte(b, ' ')
		if sp < 0 {
			if k < 4 {
				return h, "an RFC 5424 header needs TIMESTAMP HOSTNAME APP-NAME PROCID MSGID"
			}
			sp = len(b)
		}
		f[k], b = b[:sp], b[min(sp+1, len(b)):]
	}
	nilOr := func(v []byte) []byte {
		if len(v) == 1 && v[0] == '-' {
			return nil
		}
		return v
	}
	h.timeText, h.host, h.app, h.rest = nilOr(f[0]), nilOr(f[1]), nilOr(f[2]), b
	if h.timeText != nil {
		h.time, h.timeOK = parseTimeText(h.timeText)
	}
	return h, ""
}

// parse3164Time reads "Mmm dd hh:mm:ss" (dd space- or zero-padded) as UTC in
// the year that puts it nearest arrival (now when arrival is zero).
func parse3164Time(s []byte, arrival time.Time) (time.Time, bool) {
	month := monthIndex(s) + 1
	day, ok1 := 0, false
	switch {
	case s[4] == ' ':
		day, ok1 = digitsAt(s, 5, 1)
	default:
		day, ok1 = digitsAt(s, 4, 2)
	}
	hour, ok2 := digitsAt(s, 7, 2)
	minute, ok3 := digitsAt(s, 10, 2)
	sec, ok4 := digitsAt(s, 13, 2)
	if !(ok1 && ok2 && ok3 && ok4) || s[6] != ' ' || s[9] != ':' || s[12] != ':' || hour > 23 || minute > 59 || sec > 60 || day < 1 {
		return time.Time{}, false
	}
	if arrival.IsZero() {
		arrival = time.Now()
	}
	ay := arrival.UTC().Year()
	var best time.Time
	found := false
	for y := ay - 1; y <= ay+1; y++ {
		if day > daysIn(month, y) {
			continue
		}
		t, ok := unixTime(y, month, day, hour, minute, sec, 0, 0)
		if ok && (!found || absDur(t.Sub(arrival)) < absDur(best.Sub(arrival))) {
			best, found = t, true
		}
	}
	return best, found
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// cefLine is a parsed CEF line; its slices alias it.
type cefLine struct {
	product, extension []byte
}

// parseCEF splits "CEF:0|Vendor|Product|Version|Signature|Name|Severity|Ext".
// A '|' in a header field is escaped as "\|".
func parseCEF(b []byte) (c cefLine, why string) {
	b = b[len("CEF:"):]
	field, start := 0, 0
	for i := 0; i < len(b) && field < 7; i++ {
		switch b[i] {
		case '\\':
			i++
		case '|':
			if field == 2 {
				c.product = b[start:i]
			}
			field++
			start = i + 1
		}
	}
	if field < 7 {
		return c, "a CEF header needs 7 fields separated by '|' (Version|Vendor|Product|Version|Signature|Name|Severity)"
	}
	c.extension = b[start:]
	return c, ""
}

// ext returns the value of an extension key (up to the next " key=", the way
// CEF delimits values that may hold spaces), or nil.
func (c cefLine) ext(key string) []byte {
	e := c.extension
	for i := 0; i < len(e); {
		j := bytes.IndexByte(e[i:], '=')
		if j < 0 {
			return nil
		}
		k := e[i : i+j]
		v := i + j + 1
		end := nextCEFKey(e, v)
		if string(k) == key {
			return bytes.TrimRight(e[v:end], " ")
		}
		i = end + 1
	}
	return nil
}

// nextCEFKey returns where the value starting at e[v] ends: at the space
// before the next "key=" (a key is letters, digits, '_', '.', '[', ']'), or
// the end. An escaped "\=" is part of a value.
func nextCEFKey(e []byte, v int) int {
	for i := v; i < len(e); i++ {
		if e[i] != ' ' {
			continue
		}
		j := i + 1
		for j < len(e) && (isDigit(e[j]) || lower(e[j]) >= 'a' && lower(e[j]) <= 'z' || e[j] == '_' || e[j] == '.' || e[j] == '[' || e[j] == ']') {
			j++
		}
		if j > i+1 && j < len(e) && e[j] == '=' && e[j-1] != '\\' {
			return i
		}
	}
	return len(e)
}

// parseCEFTime reads a CEF rt/end time: epoch milliseconds, or
// "Mmm dd yyyy hh:mm:ss" with optional ".SSS" (UTC; a trailing zone name is
// accepted only as UTC or GMT).
func parseCEFTime(s []byte) (time.Time, bool) {
	if len(s) > 0 && isDigit(s[0]) {
		return parseEpoch(s)
	}
	if len(s) < 20 || monthIndex(s) < 0 || s[3] != ' ' || s[6] != ' ' || s[11] != ' ' || s[14] != ':' || s[17] != ':' {
		return time.Time{}, false
	}
	day, ok1 := digitsAt(s, 4, 2)
	year, ok2 := digitsAt(s, 7, 4)
	hour, ok3 := digitsAt(s, 12, 2)
	minute, ok4 := digitsAt(s, 15, 2)
	sec, ok5 := digitsAt(s, 18, 2)
	month := monthIndex(s) + 1
	if !(ok1 && ok2 && ok3 && ok4 && ok5) || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 60 {
		return time.Time{}, false
	}
	i, nsec := 20, 0
	if i < len(s) && s[i] == '.' {
		var ok bool
		if nsec, i, ok = fraction(s, i+1); !ok {
			return time.Time{}, false
		}
	}
	if rest := s[i:]; len(rest) > 0 && !bytes.Equal(rest, []byte(" UTC")) && !bytes.Equal(rest, []byte(" GMT")) && !bytes.Equal(rest, []byte(" Z")) {
		return time.Time{}, false
	}
	return unixTime(year, month, day, hour, minute, sec, nsec, 0)
}
