package decode

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func utc(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
	return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
}

func TestParseTime(t *testing.T) {
	sep5 := utc(2024, 9, 5, 10, 11, 12, 0)
	tests := []struct {
		name string
		raw  string
		want time.Time // zero: must be rejected
	}{
		// RFC 3339 and its relatives.
		{"rfc3339 Z", `"2024-09-05T10:11:12Z"`, sep5},
		{"cloudtrail eventTime", `"2024-09-05T10:11:12Z"`, sep5},
		{"azure 7 fraction digits", `"2024-09-05T10:11:12.1234567Z"`, sep5.Add(123456700)},
		{"okta/ecs millis", `"2024-09-05T10:11:12.123Z"`, sep5.Add(123 * time.Millisecond)},
		{"gcp/docker nanos", `"2024-09-05T10:11:12.123456789Z"`, sep5.Add(123456789)},
		{"more than 9 fraction digits truncated", `"2024-09-05T10:11:12.123456789987654Z"`, sep5.Add(123456789)},
		{"one fraction digit", `"2024-09-05T10:11:12.5Z"`, sep5.Add(500 * time.Millisecond)},
		{"offset colon", `"2024-09-05T12:11:12+02:00"`, sep5},
		{"offset no colon (zap ISO8601)", `"2024-09-05T12:11:12.123+0200"`, sep5.Add(123 * time.Millisecond)},
		{"offset hours only", `"2024-09-05T12:11:12+02"`, sep5},
		{"negative offset", `"2024-09-05T04:41:12-05:30"`, sep5},
		{"azure +00:00", `"2024-09-05T10:11:12.5522137+00:00"`, sep5.Add(552213700)},
		{"minus zero offset", `"2024-09-05T10:11:12-00:00"`, sep5},
		{"lower-case t and z", `"2024-09-05t10:11:12z"`, sep5},
		{"no zone is UTC", `"2024-09-05T10:11:12"`, sep5},
		{"no zone with fraction (LocalDateTime)", `"2024-09-05T10:11:12.123"`, sep5.Add(123 * time.Millisecond)},
		{"space separator", `"2024-09-05 10:11:12.123"`, sep5.Add(123 * time.Millisecond)},
		{"fluent-bit java_sql_timestamp", `"2024-09-05 10:11:12.000681"`, sep5.Add(681 * time.Microsecond)},
		{"python logging comma", `"2024-09-05 10:11:12,123"`, sep5.Add(123 * time.Millisecond)},
		{"space then offset (fluentd, ruby)", `"2024-09-05 12:11:12 +0200"`, sep5},
		{"space then UTC", `"2024-09-05 10:11:12 UTC"`, sep5},
		{"GMT", `"2024-09-05 10:11:12.25 GMT"`, sep5.Add(250 * time.Millisecond)},
		{"space then Z", `"2024-09-05T10:11:12 Z"`, sep5},
		{"rfc 9557 zone suffix", `"2024-09-05T12:11:12+02:00[Europe/Paris]"`, sep5},
		{"rfc 9557 two suffixes", `"2024-09-05T10:11:12Z[UTC][u-ca=iso8601]"`, sep5},
		{"year-first slashes (PAN-OS)", `"2024/09/05 10:11:12"`, sep5},
		{"leap day", `"2024-02-29T00:00:00Z"`, utc(2024, 2, 29, 0, 0, 0, 0)},
		{"leap day 2000", `"2000-02-29T00:00:00Z"`, utc(2000, 2, 29, 0, 0, 0, 0)},
		{"leap second rolls over", `"2016-12-31T23:59:60Z"`, utc(2017, 1, 1, 0, 0, 0, 0)},
		{"offset crosses the day", `"2024-09-05T01:00:00+03:00"`, utc(2024, 9, 4, 22, 0, 0, 0)},
		{"first accepted instant", `"1971-01-01T00:00:00Z"`, utc(1971, 1, 1, 0, 0, 0, 0)},
		{"last accepted instant", `"2200-12-31T23:59:59.999999999Z"`, utc(2200, 12, 31, 23, 59, 59, 999999999)},
		{"escaped characters", `"2024\/09\/05 10:11:12\u005A"`, sep5},
		{"escaped digit", `"\u0032024-09-05T10:11:12Z"`, sep5},
		{"json whitespace around", " \t\"2024-09-05T10:11:12Z\"\r\n", sep5},

		// Common Log Format.
		{"clf", `"05/Sep/2024:12:11:12 +0200"`, sep5},
		{"clf month case", `"05/SEP/2024:10:11:12 +0000"`, sep5},
		{"clf negative offset", `"05/Sep/2024:05:11:12 -0500"`, sep5},

		// Epoch numbers.
		{"epoch seconds", `1725531072`, utc(2024, 9, 5, 10, 11, 12, 0)},
		{"epoch seconds fraction (zap, splunk hec)", `1725531072.123`, utc(2024, 9, 5, 10, 11, 12, 123000000)},
		{"epoch seconds 9 fraction digits exact", `1725531072.123456789`, utc(2024, 9, 5, 10, 11, 12, 123456789)},
		{"epoch seconds extra digits truncated", `1725531072.1234567891`, utc(2024, 9, 5, 10, 11, 12, 123456789)},
		{"epoch millis (ocsf, pino)", `1725531072123`, utc(2024, 9, 5, 10, 11, 12, 123000000)},
		{"epoch millis fraction", `1725531072123.5`, utc(2024, 9, 5, 10, 11, 12, 123500000)},
		{"epoch micros", `1725531072123456`, utc(2024, 9, 5, 10, 11, 12, 123456000)},
		{"epoch nanos", `1725531072123456789`, utc(2024, 9, 5, 10, 11, 12, 123456789)},
		{"java double seconds", `1.725531072123E9`, utc(2024, 9, 5, 10, 11, 12, 123000000)},
		{"exponent millis", `1.725531072123e12`, utc(2024, 9, 5, 10, 11, 12, 123000000)},
		{"negative exponent", `1725531072123e-3`, utc(2024, 9, 5, 10, 11, 12, 123000000)},
		{"explicit plus exponent", `17255310.72e+2`, utc(2024, 9, 5, 10, 11, 12, 0)},
		{"numeric string (nginx $msec)", `"1725531072.123"`, utc(2024, 9, 5, 10, 11, 12, 123000000)},
		{"numeric string nanos (OTLP timeUnixNano)", `"1725531072123456789"`, utc(2024, 9, 5, 10, 11, 12, 123456789)},
		{"first second of 1971", `31536000`, utc(1971, 1, 1, 0, 0, 0, 0)},
		{"1e11 is millis", `1e11`, time.UnixMilli(1e11).UTC()},
		{"1e14 is micros", `100000000000000`, time.UnixMicro(1e14).UTC()},
		{"1e17 is nanos", `1e17`, time.Unix(0, 1e17).UTC()},
		{"largest nanos in range", strconv.FormatInt(utc(2200, 12, 31, 23, 59, 59, 999999999).UnixNano(), 10), utc(2200, 12, 31, 23, 59, 59, 999999999)},
		{"first nanos past range", strconv.FormatInt(utc(2201, 1, 1, 0, 0, 0, 0).UnixNano(), 10), time.Time{}},

		// Rejected.
		{"yesterday", `"yesterday"`, time.Time{}},
		{"month 13", `"2024-13-01T00:00:00Z"`, time.Time{}},
		{"month 0", `"2024-00-01T00:00:00Z"`, time.Time{}},
		{"day 0", `"2024-09-00T00:00:00Z"`, time.Time{}},
		{"feb 30", `"2024-02-30T00:00:00Z"`, time.Time{}},
		{"feb 29 non-leap", `"2023-02-29T00:00:00Z"`, time.Time{}},
		{"sep 31", `"2024-09-31T00:00:00Z"`, time.Time{}},
		{"hour 24", `"2024-09-05T24:00:00Z"`, time.Time{}},
		{"minute 60", `"2024-09-05T10:60:00Z"`, time.Time{}},
		{"second 61", `"2024-09-05T10:11:61Z"`, time.Time{}},
		{"empty string", `""`, time.Time{}},
		{"empty input", ``, time.Time{}},
		{"only spaces", `   `, time.Time{}},
		{"true", `true`, time.Time{}},
		{"null", `null`, time.Time{}},
		{"object", `{"seconds":1725531072}`, time.Time{}},
		{"array", `[1725531072]`, time.Time{}},
		{"huge exponent", `1e400`, time.Time{}},
		{"huge negative exponent", `1e-400`, time.Time{}},
		{"exponent overflow", `1e99999999999999999999`, time.Time{}},
		{"zero", `0`, time.Time{}},
		{"negative", `-1725531072`, time.Time{}},
		{"negative zero", `-0`, time.Time{}},
		{"1970", `86400`, time.Time{}},
		{"seconds past 2200", `99999999999`, time.Time{}},
		{"nanos past 2200", `9999999999999999999`, time.Time{}},
		{"twenty digits", `12345678901234567890`, time.Time{}},
		{"leading zero", `01725531072`, time.Time{}},
		{"leading plus", `+1725531072`, time.Time{}},
		{"bare fraction", `.5`, time.Time{}},
		{"trailing dot", `1725531072.`, time.Time{}},
		{"dangling exponent", `1725531072e`, time.Time{}},
		{"hex", `"0x66d98380"`, time.Time{}},
		{"NaN", `NaN`, time.Time{}},
		{"Infinity string", `"Infinity"`, time.Time{}},
		{"unquoted rfc3339", `2024-09-05T10:11:12Z`, time.Time{}},
		{"missing closing quote", `"2024-09-05T10:11:12Z`, time.Time{}},
		{"lone quote", `"`, time.Time{}},
		{"two strings", `"2024-09-05T10:11:12Z" "x"`, time.Time{}},
		{"inner quote", `"2024-09-05T10:11:12Z"x"`, time.Time{}},
		{"raw control char", "\"2024-09-05T10:11:12Z\t\"", time.Time{}},
		{"bad escape", `"2024-09-05T10:11:12\qZ"`, time.Time{}},
		{"short unicode escape", `"2024-09-05T10:11:12\u005"`, time.Time{}},
		{"non-ascii escape", `"2024-09-05T10:11:12\u00e9"`, time.Time{}},
		{"leading space in string", `" 2024-09-05T10:11:12Z"`, time.Time{}},
		{"trailing space in string", `"2024-09-05T10:11:12Z "`, time.Time{}},
		{"space without zone", `"2024-09-05 10:11:12 "`, time.Time{}},
		{"numeric string with space", `"1725531072 "`, time.Time{}},
		{"date only", `"2024-09-05"`, time.Time{}},
		{"no seconds", `"2024-09-05T10:11Z"`, time.Time{}},
		{"empty fraction", `"2024-09-05T10:11:12.Z"`, time.Time{}},
		{"offset hour 24", `"2024-09-05T10:11:12+24:00"`, time.Time{}},
		{"offset minute 60", `"2024-09-05T10:11:12+02:60"`, time.Time{}},
		{"offset three digits", `"2024-09-05T10:11:12+020"`, time.Time{}},
		{"offset then garbage", `"2024-09-05T10:11:12+02:00x"`, time.Time{}},
		{"zone name only", `"2024-09-05T10:11:12 CEST"`, time.Time{}},
		{"zone suffix without offset", `"2024-09-05T10:11:12[Europe/Paris]"`, time.Time{}},
		{"unclosed zone suffix", `"2024-09-05T10:11:12Z[Europe/Paris"`, time.Time{}},
		{"empty zone suffix", `"2024-09-05T10:11:12Z[]"`, time.Time{}},
		{"go time.String with zone name", `"2024-09-05 10:11:12.123456789 +0000 UTC"`, time.Time{}},
		{"mixed date separators", `"2024/09-05T10:11:12Z"`, time.Time{}},
		{"bad separator", `"2024-09-05X10:11:12Z"`, time.Time{}},
		{"two-digit year", `"24-09-05T10:11:12Z"`, time.Time{}},
		{"five-digit year", `"02024-09-05T10:11:12Z"`, time.Time{}},
		{"before 1971", `"1970-12-31T23:59:59Z"`, time.Time{}},
		{"1971 in local time, 1970 in UTC", `"1971-01-01T00:30:00+01:00"`, time.Time{}},
		{"after 2200", `"2201-01-01T00:00:00Z"`, time.Time{}},
		{"year 0000", `"0000-01-01T00:00:00Z"`, time.Time{}},
		{"year 9999", `"9999-12-31T23:59:59Z"`, time.Time{}},
		{"month-first US date (ambiguous)", `"9/5/2024 10:11:12 AM"`, time.Time{}},
		{"day-first date (ambiguous)", `"05/09/2024 10:11:12"`, time.Time{}},
		{"syslog without year", `"Sep  5 10:11:12"`, time.Time{}},
		{"rfc 1123", `"Thu, 05 Sep 2024 10:11:12 GMT"`, time.Time{}},
		{"clf without zone", `"05/Sep/2024:10:11:12"`, time.Time{}},
		{"clf bad month", `"05/Sex/2024:10:11:12 +0000"`, time.Time{}},
		{"clf bad day", `"31/Sep/2024:10:11:12 +0000"`, time.Time{}},
		{"clf Z zone", `"05/Sep/2024:10:11:12 Z0000"`, time.Time{}},
		{"dotnet /Date()/", `"\/Date(1725531072123)\/"`, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseTime([]byte(tt.raw))
			if tt.want.IsZero() {
				require.False(t, ok, "accepted %q as %v", tt.raw, got)
				require.True(t, got.IsZero())
				return
			}
			require.True(t, ok, "rejected %q", tt.raw)
			require.Truef(t, tt.want.Equal(got), "%q: want %v, got %v", tt.raw, tt.want, got)
			require.Equal(t, time.UTC, got.Location())
		})
	}
}

// Every time that the standard library's RFC 3339 parser accepts is accepted,
// with the same instant.
func TestParseTimeAgreesWithStdlib(t *testing.T) {
	for _, s := range []string{
		"2024-09-05T10:11:12Z",
		"2024-09-05T10:11:12.1Z",
		"2024-09-05T10:11:12.1234567Z",
		"2024-09-05T10:11:12.123456789+05:45",
		"2024-09-05T10:11:12,5-03:00",
		"1999-12-31T23:59:59.999999999-23:59",
		"2200-12-31T23:59:59+00:00",
		"1971-01-01T00:00:00Z",
		"2024-02-29T12:00:00+14:00",
	} {
		want, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err, s)
		got, ok := ParseTime([]byte(strconv.Quote(s)))
		require.True(t, ok, s)
		require.True(t, want.Equal(got), "%s: want %v got %v", s, want, got)
	}
}

func TestParseTimeNoAllocs(t *testing.T) {
	inputs := [][]byte{
		[]byte(`"2024-09-05T10:11:12.1234567Z"`),
		[]byte(`"2024-09-05 12:11:12,123 +0200"`),
		[]byte(`"2024\/09\/05 10:11:12\u005A"`),
		[]byte(`"05/Sep/2024:10:11:12 +0000"`),
		[]byte(`1725531072.123`),
		[]byte(`"1725531072123456789"`),
		[]byte(`"yesterday"`),
		[]byte(`1e400`),
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, in := range inputs {
			ParseTime(in)
		}
	})
	require.Zero(t, allocs)
}

var strictRFC3339 = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$`)

func FuzzParseTime(f *testing.F) {
	// Seeds live in testdata/fuzz/FuzzParseTime.
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, ok := ParseTime(raw)
		if !ok {
			if !got.IsZero() {
				t.Fatalf("rejected %q but returned %v", raw, got)
			}
		} else {
			if got.Location() != time.UTC {
				t.Fatalf("%q: location %v, want UTC", raw, got.Location())
			}
			if y := got.Year(); y < 1971 || y > 2200 {
				t.Fatalf("%q: year %d out of [1971, 2200]", raw, y)
			}
			// The result round-trips through RFC 3339 and through epoch nanoseconds.
			rfc := strconv.Quote(got.Format(time.RFC3339Nano))
			again, ok := ParseTime([]byte(rfc))
			if !ok || !again.Equal(got) {
				t.Fatalf("%q gave %v, but %s gave %v, %v", raw, got, rfc, again, ok)
			}
			if ns := got.UnixNano(); ns >= 1e17 {
				again, ok = ParseTime(strconv.AppendInt(nil, ns, 10))
				if !ok || !again.Equal(got) {
					t.Fatalf("%q gave %v, but %d gave %v, %v", raw, got, ns, again, ok)
				}
			}
		}

		// On strings in strict RFC 3339 shape, ParseTime agrees with the
		// standard library (which refuses leap seconds, and which outside this
		// shape is more lenient, e.g. with one-digit hours).
		if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
			body := string(raw[1 : len(raw)-1])
			if strictRFC3339.MatchString(body) && body[17:19] != "60" {
				want, err := time.Parse(time.RFC3339Nano, body)
				inRange := err == nil && want.UTC().Year() >= 1971 && want.UTC().Year() <= 2200
				if ok != inRange || ok && !want.Equal(got) {
					t.Fatalf("%q: ParseTime gives %v, %v; time.Parse gives %v, %v", raw, got, ok, want, err)
				}
			}
		}
	})
}
