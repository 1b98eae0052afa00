package decode

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The time forms Azure writes into sign-in and audit records ("time"), as
// .NET formats a DateTime or DateTimeOffset: RFC 3339 with seven fraction
// digits, and the month-first US forms of en-US "G"/"g", the invariant
// culture and DateTimeOffset.ToString(). Each is read as Azure means it
// inside a records envelope; outside, the month-first ones stay rejected.
func TestAzureTimeForms(t *testing.T) {
	nine := time.Date(2007, 1, 9, 9, 41, 0, 0, time.UTC)
	for _, c := range []struct {
		raw  string
		want time.Time
		iso  bool // accepted everywhere
	}{
		{"2007-01-09T09:41:00.0000000Z", nine, true},
		{"2007-01-09T09:41:00Z", nine, true},
		{"2007-01-09T10:41:00+01:00", nine, true},
		{"2007-01-09T09:41:00", nine, true},
		{"2007-01-09 09:41:00Z", nine, true},
		{"2007-01-09T09:41:00.1234567Z", nine.Add(123456700), true},
		{"1/9/2007 9:41:00 AM", nine, false},
		{"1/9/2007 9:41 AM", nine, false},
		{"01/09/2007 09:41:00", nine, false},
		{"1/9/2007 10:41:00 AM +01:00", nine, false},
		{"01/09/2007 10:41:00 +01:00", nine, false},
		{"1/9/2007 9:41:00 PM", nine.Add(12 * time.Hour), false},
		{"1/9/2007 12:00:00 AM", time.Date(2007, 1, 9, 0, 0, 0, 0, time.UTC), false},
		{"1/9/2007 12:30:00 PM", time.Date(2007, 1, 9, 12, 30, 0, 0, time.UTC), false},
		{"12/31/2007 11:59:59 pm -05:00", time.Date(2008, 1, 1, 4, 59, 59, 0, time.UTC), false},
		{"1/9/2007 9:41:00.5 AM Z", nine.Add(500 * time.Millisecond), false},
		{"01/09/2007 21:41", nine.Add(12 * time.Hour), false},
	} {
		t.Run(c.raw, func(t *testing.T) {
			d, err := New(FieldConfig{})
			require.NoError(t, err)
			r := decodeAll(d, fmt.Appendf(nil, `{"records":[{"time":%q,"tenantId":"t","category":"SignInLogs"}]}`, c.raw))
			require.Len(t, r.events, 1, "rejects: %+v", r.rejects)
			require.True(t, c.want.Equal(r.events[0].Time), "got %v", r.events[0].Time)

			r = decodeAll(d, fmt.Appendf(nil, `{"time":%q,"tenant":"t","source":"s"}`, c.raw))
			if c.iso {
				require.Len(t, r.events, 1, "rejects: %+v", r.rejects)
				return
			}
			require.Len(t, r.rejects, 1, "a month-first date outside Azure records is ambiguous")
			require.Equal(t, ReasonBadTime, r.rejects[0].Reason)
		})
	}
}

// Month-first forms that are not what .NET writes, or not a date, stay
// rejected inside Azure records too.
func TestAzureTimeFormsRejected(t *testing.T) {
	d, err := New(FieldConfig{})
	require.NoError(t, err)
	for _, raw := range []string{
		"13/9/2007 9:41:00 AM",   // month 13
		"2/30/2007 9:41:00 AM",   // 30 February
		"1/9/07 9:41:00 AM",      // two-digit year
		"1/9/2007 13:41:00 PM",   // 13 PM
		"1/9/2007 0:41:00 AM",    // 0 AM
		"1/9/2007 9:41:00 XM",    // not AM/PM
		"1/9/2007",               // no time
		"1/9/2007 9:41:00 AM +1", // a zone needs two hour digits
		"1/9/2007 9:41:00 AM x",  // trailing garbage
		"1/9/1960 9:41:00 AM",    // before 1971
		"1/9/2007T9:41:00",       // no space
		"001/9/2007 9:41:00",     // three-digit month
	} {
		r := decodeAll(d, fmt.Appendf(nil, `{"records":[{"time":%q,"tenantId":"t","category":"c"}]}`, raw))
		require.Len(t, r.rejects, 1, "%q: %+v", raw, r.events)
		require.Equal(t, ReasonBadTime, r.rejects[0].Reason, raw)
	}
}

// A topic's time_layouts accept a producer's own form anywhere, tried
// after the built-in ones; a layout without a zone reads UTC.
func TestTimeLayouts(t *testing.T) {
	d, err := New(FieldConfig{TimeLayouts: []string{"02.01.2006 15:04:05", "Jan 2 2006 15:04:05 MST"}})
	require.NoError(t, err)
	r := decodeAll(d, []byte(`{"tenant":"t","source":"s","time":"09.01.2007 09:41:00"}`))
	require.Len(t, r.events, 1, "%+v", r.rejects)
	require.Equal(t, time.Date(2007, 1, 9, 9, 41, 0, 0, time.UTC), r.events[0].Time)
	r = decodeAll(d, []byte(`{"tenant":"t","source":"s","time":"2007-01-09T09:41:00Z"}`))
	require.Len(t, r.events, 1, "built-in forms still first")
	r = decodeAll(d, []byte(`{"records":[{"tenantId":"t","category":"c","time":"09.01.2007 09:41:00"}]}`))
	require.Len(t, r.events, 1, "envelopes too")
	r = decodeAll(d, []byte(`{"tenant":"t","source":"s","time":"09.01.1950 09:41:00"}`))
	require.Len(t, r.rejects, 1, "the 1971–2200 bounds hold")

	for _, bad := range []string{"", "15:04:05", "not a layout"} {
		_, err := New(FieldConfig{TimeLayouts: []string{bad}})
		require.ErrorContains(t, err, "time_layouts[0]", bad)
	}
}
