package decode

import "time"

// parseMonthFirst parses the month-first US forms that .NET writes for a
// DateTime or DateTimeOffset, as Azure sign-in and audit records carry them
// in their "time" beside RFC 3339 (en-US "G" and "g", invariant culture,
// DateTimeOffset.ToString()):
//
//	1/9/2007 9:41:00 AM          01/09/2007 09:41:00
//	1/9/2007 9:41 AM             01/09/2007 09:41:00 +01:00
//	1/9/2007 10:41:00 AM +01:00  1/9/2007 9:41:00.1234567 PM
//
// Month and day take one or two digits, the year four; the hour one or two
// (1–12 with AM/PM, in either letter case; 0–23 without); seconds and a
// fraction are optional; a zone, after one space, is Z or ±hh:mm (±hhmm, ±hh);
// without one the time is UTC. Only inside an Azure records envelope, where
// this is what "1/9/2007" means: elsewhere 01/09 is ambiguous and is
// rejected unless a topic's time_layouts name the form.
func parseMonthFirst(s []byte) (time.Time, bool) {
	i := 0
	num := func(lo, hi int) (int, bool) { // 1 or 2 digits
		v, n := 0, 0
		for n < 2 && i < len(s) && s[i] >= '0' && s[i] <= '9' {
			v = v*10 + int(s[i]-'0')
			i++
			n++
		}
		return v, n > 0 && v >= lo && v <= hi
	}
	want := func(c byte) bool {
		if i < len(s) && s[i] == c {
			i++
			return true
		}
		return false
	}
	month, ok := num(1, 12)
	if !ok || !want('/') {
		return time.Time{}, false
	}
	day, ok := num(1, 31)
	if !ok || !want('/') {
		return time.Time{}, false
	}
	year, ok := digitsAt(s, i, 4)
	if !ok || day > daysIn(month, year) {
		return time.Time{}, false
	}
	i += 4
	if !want(' ') {
		return time.Time{}, false
	}
	hour, ok := num(0, 23)
	if !ok || !want(':') {
		return time.Time{}, false
	}
	minute, ok := digitsAt(s, i, 2)
	if !ok || minute > 59 {
		return time.Time{}, false
	}
	i += 2
	sec, nsec := 0, 0
	if want(':') {
		if sec, ok = digitsAt(s, i, 2); !ok || sec > 60 {
			return time.Time{}, false
		}
		i += 2
		if want('.') {
			if nsec, i, ok = fraction(s, i); !ok {
				return time.Time{}, false
			}
		}
	}
	if i+3 <= len(s) && s[i] == ' ' && (s[i+2] == 'M' || s[i+2] == 'm') {
		switch s[i+1] {
		case 'A', 'a':
			if hour < 1 || hour > 12 {
				return time.Time{}, false
			}
			hour %= 12
		case 'P', 'p':
			if hour < 1 || hour > 12 {
				return time.Time{}, false
			}
			hour = hour%12 + 12
		default:
			return time.Time{}, false
		}
		i += 3
	}
	offset := 0
	if i < len(s) {
		if !want(' ') {
			return time.Time{}, false
		}
		var next int
		if offset, next, ok = parseZone(s, i, true); !ok || next != len(s) {
			return time.Time{}, false
		}
	}
	return unixTime(year, month, day, hour, minute, sec, nsec, offset)
}
