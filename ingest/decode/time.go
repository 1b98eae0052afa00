package decode

import (
	"time"
)

// Event times outside [minUnix, maxUnix) — years before 1971 or
// after 2200 — are rejected: they are almost always a unit mix-up or a
// zero value, never a real log record.
var (
	minUnix = time.Date(1971, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	maxUnix = time.Date(2201, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
)

// maxEscaped bounds the unescaped length of a JSON string time that
// contains escape sequences (no accepted form is anywhere near that long).
const maxEscaped = 96

// ParseTime parses the raw JSON text of an event-time field: a JSON string
// with its quotes, or a JSON number. It never allocates. Surrounding JSON
// whitespace is ignored. The result is in UTC, and ok is false for anything
// that is not one of the forms below or that falls before 1971 or after 2200.
//
// Accepted string forms (all fields zero-padded, as written):
//
//   - RFC 3339 / ISO 8601 extended: 2024-09-05T10:11:12Z, with 'T', 't' or a
//     space between date and time; seconds are required; an optional
//     fraction of any length after '.' or ',' (digits past nanoseconds are
//     truncated; Azure sends 7, GCP and Docker 9, Python logging uses
//     ",123"); a zone of Z/z, UTC, GMT, ±hh:mm, ±hhmm or ±hh, optionally
//     after one space ("2024-09-05 10:11:12 +0000" from fluentd and Ruby,
//     "… UTC"); no zone at all means UTC (Fluent Bit java_sql_timestamp,
//     Logback, Java LocalDateTime). An explicit zone may be followed by
//     RFC 9557 bracketed suffixes such as "[Europe/Paris]" (Java
//     ZonedDateTime.toString); they are ignored, the numeric offset rules.
//     Second 60 (a leap second) is accepted and rolls into the next minute.
//   - The same with '/' as date separator, year first: 2024/09/05 10:11:12
//     (PAN-OS and other appliance exports). Day-first or month-first dates
//     such as 05/09/2024 are ambiguous and rejected.
//   - Common Log Format, as nginx $time_local and Apache %t write it:
//     05/Sep/2024:10:11:12 +0000 (the zone is required).
//   - A string with JSON escapes is unescaped first; it must then hold at
//     most 96 bytes (no escapes: no limit).
//   - A JSON number in a string ("1725531072.123", nginx $msec; OTLP/JSON
//     "timeUnixNano"): handled like a number.
//
// A number (or numeric string) is an offset from the Unix epoch whose unit is
// told by magnitude: below 1e11 seconds, below 1e14 milliseconds (OCSF time,
// pino, CloudWatch), below 1e17 microseconds, else nanoseconds. Fractions and
// exponents are exact (no float rounding): 1725531072.123,
// 1.725531072123E9 (Java Double.toString) and 1725531072123456789 all work.
// Negative numbers are rejected.
//
// Rejected, on purpose: dates without a time or without seconds, times
// without a year (syslog RFC 3164 "Sep  5 10:11:12"), day/month-ambiguous
// dates ("9/5/2024 10:11:12 AM"), zone names without a numeric offset, and
// anything else not listed.
func ParseTime(raw []byte) (time.Time, bool) {
	raw = trimSpace(raw)
	if len(raw) == 0 {
		return time.Time{}, false
	}
	if raw[0] != '"' {
		return parseEpoch(raw)
	}
	if len(raw) < 2 || raw[len(raw)-1] != '"' {
		return time.Time{}, false
	}
	body := raw[1 : len(raw)-1]
	escaped := false
	for _, c := range body {
		if c == '"' || c < 0x20 {
			return time.Time{}, false
		}
		if c == '\\' {
			escaped = true
		}
	}
	if !escaped {
		return parseTimeText(body)
	}
	var buf [maxEscaped]byte
	text, ok := unescapeASCII(body, buf[:0])
	if !ok {
		return time.Time{}, false
	}
	return parseTimeText(text)
}

// trimSpace strips the four JSON whitespace characters from both ends.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// unescapeASCII decodes the JSON escapes of a string body (whose unescaped
// quotes and control characters the caller already ruled out) into dst,
// which it never grows past its capacity. Escapes that decode to non-ASCII
// runes, malformed escapes and a too long result all give false: no
// accepted time form has anything but ASCII in it.
func unescapeASCII(body, dst []byte) ([]byte, bool) {
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c == '\\' {
			i++
			if i >= len(body) {
				return nil, false
			}
			switch body[i] {
			case '"', '\\', '/':
				c = body[i]
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'u':
				if i+4 >= len(body) {
					return nil, false
				}
				r := 0
				for _, h := range body[i+1 : i+5] {
					v, ok := hexVal(h)
					if !ok {
						return nil, false
					}
					r = r<<4 | v
				}
				if r >= 0x80 {
					return nil, false
				}
				c = byte(r)
				i += 4
			default:
				return nil, false
			}
		} else if c >= 0x80 {
			return nil, false
		}
		if len(dst) == cap(dst) {
			return nil, false
		}
		dst = append(dst, c)
	}
	return dst, true
}

func hexVal(c byte) (int, bool) {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0'), true
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10, true
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10, true
	}
	return 0, false
}

// parseTimeText parses the (unescaped) content of a JSON string time.
func parseTimeText(s []byte) (time.Time, bool) {
	switch {
	case len(s) >= 19 && (s[4] == '-' || s[4] == '/'):
		return parseISO(s)
	case len(s) == len("05/Sep/2024:10:11:12 +0000") && s[2] == '/':
		return parseCLF(s)
	default:
		return parseEpoch(s)
	}
}

// unixTime converts a checked civil date and time plus a zone offset (in
// seconds east of UTC) to a UTC time, or false when out of range.
func unixTime(year, month, day, hour, minute, sec, nsec, offset int) (time.Time, bool) {
	// Bound the year before any arithmetic; the exact check is below.
	if year < 1970 || year > 2201 {
		return time.Time{}, false
	}
	secs := daysSinceEpoch(year, month, day)*86400 +
		int64(hour*3600+minute*60+sec) - int64(offset)
	if secs < minUnix || secs >= maxUnix {
		return time.Time{}, false
	}
	return time.Unix(secs, int64(nsec)).UTC(), true
}

// daysSinceEpoch returns the number of days from 1970-01-01 to the given
// proleptic Gregorian date (days-from-civil, valid for any year ≥ 0).
func daysSinceEpoch(year, month, day int) int64 {
	y := int64(year)
	if month <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400 // [0, 399]
	m := int64(month)
	if m > 2 {
		m -= 3
	} else {
		m += 9
	}
	doy := (153*m+2)/5 + int64(day) - 1    // [0, 365]
	doe := yoe*365 + yoe/4 - yoe/100 + doy // [0, 146096]
	return era*146097 + doe - 719468
}

func isLeap(year int) bool {
	return year%4 == 0 && (year%100 != 0 || year%400 == 0)
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if isLeap(year) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// digits parses s[i:i+n] as an unsigned decimal of exactly n digits.
func digitsAt(s []byte, i, n int) (int, bool) {
	if i < 0 || i+n > len(s) {
		return 0, false
	}
	v := 0
	for _, c := range s[i : i+n] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// parseISO parses the RFC 3339 family described on ParseTime.
func parseISO(s []byte) (time.Time, bool) {
	year, ok1 := digitsAt(s, 0, 4)
	month, ok2 := digitsAt(s, 5, 2)
	day, ok3 := digitsAt(s, 8, 2)
	hour, ok4 := digitsAt(s, 11, 2)
	minute, ok5 := digitsAt(s, 14, 2)
	sec, ok6 := digitsAt(s, 17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return time.Time{}, false
	}
	dateSep := s[4]
	if s[7] != dateSep || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	switch s[10] {
	case 'T', 't', ' ':
	default:
		return time.Time{}, false
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 60 {
		return time.Time{}, false
	}

	i := 19
	nsec := 0
	if i < len(s) && (s[i] == '.' || s[i] == ',') {
		var ok bool
		if nsec, i, ok = fraction(s, i+1); !ok {
			return time.Time{}, false
		}
	}

	offset := 0
	if i < len(s) {
		if s[i] == ' ' {
			i++
			if i == len(s) {
				return time.Time{}, false // a space must be followed by a zone
			}
		}
		var ok bool
		offset, i, ok = parseZone(s, i, true)
		if !ok {
			return time.Time{}, false
		}
		// RFC 9557 suffixes after an explicit zone: [Europe/Paris][u-ca=iso8601]
		for i < len(s) && s[i] == '[' {
			j := i + 1
			for j < len(s) && j-i <= 64 && isSuffixChar(s[j]) {
				j++
			}
			if j == i+1 || j >= len(s) || s[j] != ']' {
				return time.Time{}, false
			}
			i = j + 1
		}
		if i != len(s) {
			return time.Time{}, false
		}
	}
	return unixTime(year, month, day, hour, minute, sec, nsec, offset)
}

func isSuffixChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '/' || c == '_' || c == '-' || c == '+' || c == '=' || c == '!' || c == '.'
}

// parseZone parses a zone designator at s[i:]: Z, z, UTC, GMT (when names
// is set) or a numeric offset ±hh:mm, ±hhmm, ±hh. It returns the offset in
// seconds east of UTC and the index after the designator.
func parseZone(s []byte, i int, names bool) (offset, next int, ok bool) {
	if i >= len(s) {
		return 0, i, false
	}
	switch s[i] {
	case 'Z', 'z':
		if !names {
			return 0, i, false
		}
		return 0, i + 1, true
	case 'U', 'G':
		if names && i+3 <= len(s) && (string(s[i:i+3]) == "UTC" || string(s[i:i+3]) == "GMT") {
			return 0, i + 3, true
		}
		return 0, i, false
	case '+', '-':
	default:
		return 0, i, false
	}
	sign := 1
	if s[i] == '-' {
		sign = -1
	}
	hh, ok := digitsAt(s, i+1, 2)
	if !ok || hh > 23 {
		return 0, i, false
	}
	j := i + 3
	mm := 0
	if j < len(s) && s[j] == ':' {
		if mm, ok = digitsAt(s, j+1, 2); !ok {
			return 0, i, false
		}
		j += 3
	} else if j < len(s) && s[j] >= '0' && s[j] <= '9' {
		if mm, ok = digitsAt(s, j, 2); !ok {
			return 0, i, false
		}
		j += 2
	}
	if mm > 59 {
		return 0, i, false
	}
	return sign * (hh*3600 + mm*60), j, true
}

var monthNames = [12]string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

// parseCLF parses the Common Log Format time 05/Sep/2024:10:11:12 +0000.
func parseCLF(s []byte) (time.Time, bool) {
	day, ok1 := digitsAt(s, 0, 2)
	year, ok2 := digitsAt(s, 7, 4)
	hour, ok3 := digitsAt(s, 12, 2)
	minute, ok4 := digitsAt(s, 15, 2)
	sec, ok5 := digitsAt(s, 18, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5) ||
		s[2] != '/' || s[6] != '/' || s[11] != ':' || s[14] != ':' || s[17] != ':' || s[20] != ' ' {
		return time.Time{}, false
	}
	month := 0
	for m, name := range monthNames {
		if lowerASCII(s[3]) == name[0] && lowerASCII(s[4]) == name[1] && lowerASCII(s[5]) == name[2] {
			month = m + 1
			break
		}
	}
	if month == 0 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 60 {
		return time.Time{}, false
	}
	offset, next, ok := parseZone(s, 21, false)
	if !ok || next != len(s) {
		return time.Time{}, false
	}
	return unixTime(year, month, day, hour, minute, sec, 0, offset)
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// parseEpoch parses a JSON number (strict RFC 8259 grammar) as an offset
// from the Unix epoch whose unit is told by magnitude; see ParseTime.
// The conversion is exact decimal arithmetic, so any number of digits and
// any exponent is handled without overflow or float rounding.
func parseEpoch(s []byte) (time.Time, bool) {
	if len(s) == 0 || s[0] == '-' {
		return time.Time{}, false
	}
	// Grammar: int [frac] [exp], int = 0 | [1-9][0-9]*.
	i := 0
	intStart := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	intEnd := i
	if intEnd == intStart || (s[intStart] == '0' && intEnd-intStart > 1) {
		return time.Time{}, false
	}
	fracStart, fracEnd := i, i
	if i < len(s) && s[i] == '.' {
		i++
		fracStart = i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		fracEnd = i
		if fracEnd == fracStart {
			return time.Time{}, false
		}
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		neg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			neg = s[i] == '-'
			i++
		}
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if exp < 10000 { // saturate: anything this big is out of range anyway
				exp = exp*10 + int(s[i]-'0')
			}
			i++
		}
		if i == start {
			return time.Time{}, false
		}
		if neg {
			exp = -exp
		}
	}
	if i != len(s) {
		return time.Time{}, false
	}

	// The value is 0.D × 10^point, where D is the digit sequence of the
	// integer and fraction parts without leading zeros.
	digitAt := func(k int) byte { // k-th digit of int part followed by fraction part
		if k < intEnd-intStart {
			return s[intStart+k]
		}
		return s[fracStart+k-(intEnd-intStart)]
	}
	total := (intEnd - intStart) + (fracEnd - fracStart)
	lead := 0
	for lead < total && digitAt(lead) == '0' {
		lead++
	}
	if lead == total {
		return time.Time{}, false // zero
	}
	point := (intEnd - intStart) - lead + exp // number of integer digits
	// Magnitude decides the unit; scale is the power of ten to nanoseconds.
	var scale int
	switch {
	case point <= 11: // < 1e11: seconds
		scale = 9
	case point <= 14: // < 1e14: milliseconds
		scale = 6
	case point <= 17: // < 1e17: microseconds
		scale = 3
	default:
		scale = 0
	}
	n := point + scale // digits of the value in nanoseconds
	if n > 19 {
		return time.Time{}, false // ≥ 1e19 ns is far past 2200
	}
	if n <= 0 {
		return time.Time{}, false // below one nanosecond after the epoch
	}
	var ns uint64
	for k := 0; k < n; k++ {
		d := uint64(0)
		if lead+k < total {
			d = uint64(digitAt(lead+k) - '0')
		}
		ns = ns*10 + d
	}
	secs := int64(ns / 1e9)
	if secs < minUnix || secs >= maxUnix {
		return time.Time{}, false
	}
	return time.Unix(secs, int64(ns%1e9)).UTC(), true
}

// fraction reads the digits of a fraction of a second from s[i] (at least
// one; digits past nanoseconds are truncated) and returns the nanoseconds and
// the index after them.
func fraction(s []byte, i int) (nsec, next int, ok bool) {
	start, scale := i, 100000000
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		nsec += int(s[i]-'0') * scale
		scale /= 10
		i++
	}
	return nsec, i, i > start
}
