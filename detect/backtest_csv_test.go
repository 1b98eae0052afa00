package detect

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/storage"
)

// readCSVBoth reads in with ReadCountsCSV and, to check they share the
// reader, with CSVCounts (step 1m); both must agree.
func readCSVBoth(t *testing.T, in string) ([]storage.Count, error) {
	t.Helper()
	counts, err := ReadCountsCSV(strings.NewReader(in))
	src, serr := NewCSVCounts(strings.NewReader(in), time.Minute)
	var streamed []storage.Count
	for serr == nil {
		var cs []storage.Count
		if cs, serr = src.Next(); serr == nil {
			streamed = append(streamed, cs...)
		}
	}
	if serr == io.EOF {
		serr = nil
	}
	require.Equal(t, err == nil, serr == nil, "ReadCountsCSV: %v; CSVCounts: %v", err, serr)
	if err == nil {
		require.Equal(t, counts, streamed)
	} else {
		require.Equal(t, err.Error(), serr.Error())
	}
	return counts, err
}

// TestReadCountsCSVForms: the header's columns in any order (mapped by name),
// a BOM, zoneless UTC times and whole decimal counts read as the canonical
// form does.
func TestReadCountsCSVForms(t *testing.T) {
	const t1 = 1740960060 // 2025-03-03T00:01:00Z
	for _, tc := range []struct {
		name, in string
		want     []storage.Count
	}{
		{"canonical", "time,tenant,source,count\n2025-03-03T00:01:00Z,acme,fw,5\n",
			[]storage.Count{{Tenant: "acme", Source: "fw", Clock: storage.Arrival, Bucket: t1, Events: 5}}},
		{"columns in another order", "count,source,time,tenant\n5,fw,2025-03-03T00:01:00Z,acme\n",
			[]storage.Count{{Tenant: "acme", Source: "fw", Clock: storage.Arrival, Bucket: t1, Events: 5}}},
		{"NAB's order", "tenant,source,time,count\nacme,fw,2025-03-03 00:01:00,5\nglobex,db,2025-03-03 00:01:00,7.0\n",
			[]storage.Count{
				{Tenant: "acme", Source: "fw", Clock: storage.Arrival, Bucket: t1, Events: 5},
				{Tenant: "globex", Source: "db", Clock: storage.Arrival, Bucket: t1, Events: 7},
			}},
		{"names trimmed, any case", " Time ,TENANT, source,Count \n2025-03-03T00:01:00Z,acme,fw,5\n",
			[]storage.Count{{Tenant: "acme", Source: "fw", Clock: storage.Arrival, Bucket: t1, Events: 5}}},
		{"BOM", "\ufefftime,tenant,source,count\n2025-03-03T00:01:00Z,acme,fw,5\n",
			[]storage.Count{{Tenant: "acme", Source: "fw", Clock: storage.Arrival, Bucket: t1, Events: 5}}},
		{"BOM, quoted name", "\ufeff\"tenant\",source,time,count\nacme,fw,2025-03-03T00:01:00Z,5\n",
			[]storage.Count{{Tenant: "acme", Source: "fw", Clock: storage.Arrival, Bucket: t1, Events: 5}}},
		{"tenant and source byte-exact", "time,tenant,source,count\n2025-03-03T00:01:00Z, acme ,\"f,w \",5\n",
			[]storage.Count{{Tenant: " acme ", Source: "f,w ", Clock: storage.Arrival, Bucket: t1, Events: 5}}},
	} {
		got, err := readCSVBoth(t, tc.in)
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, got, tc.name)
	}
}

// TestReadCountsCSVTimes: each accepted time form gives the Unix second of
// its RFC 3339 equivalent (fractions truncated).
func TestReadCountsCSVTimes(t *testing.T) {
	for _, tc := range []struct{ in, rfc3339 string }{
		{"2025-03-03T00:01:00Z", "2025-03-03T00:01:00Z"},
		{"2025-03-03T01:01:00+01:00", "2025-03-03T00:01:00Z"},
		{"2025-03-03T00:01:00.999Z", "2025-03-03T00:01:00Z"},
		{"2025-03-03 00:01:00", "2025-03-03T00:01:00Z"},
		{"2025-03-03 00:01:00.000", "2025-03-03T00:01:00Z"},
		{"2025-03-03 00:01:00.999999", "2025-03-03T00:01:00Z"},
		{"2025-03-03T00:01:00", "2025-03-03T00:01:00Z"},
		{"2025-03-03T00:01:00.5", "2025-03-03T00:01:00Z"},
		{" 2015-02-26 21:42:00 ", "2015-02-26T21:42:00Z"},
		{"1969-12-31 23:59:00.5", "1969-12-31T23:59:00Z"},
	} {
		want, err := time.Parse(time.RFC3339, tc.rfc3339)
		require.NoError(t, err)
		got, err := readCSVBoth(t, "time,tenant,source,count\n"+tc.in+",a,b,1\n")
		require.NoError(t, err, tc.in)
		require.Equal(t, want.Unix(), got[0].Bucket, tc.in)
	}
}

// TestReadCountsCSVCounts: integers and whole decimals, spaces trimmed.
func TestReadCountsCSVCounts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
	}{
		{"68", 68}, {"68.0", 68}, {"68.", 68}, {"6.8e1", 68}, {"680E-1", 68}, {".68e2", 68}, {"1e3", 1000},
		{" 7 ", 7}, {"\t7.0", 7}, {"0", 0}, {"0.0", 0},
		{"9007199254740992.0", 1 << 53}, {"18446744073709551615", 1<<64 - 1},
	} {
		got, err := readCSVBoth(t, "time,tenant,source,count\n2025-03-03T00:01:00Z,a,b,"+tc.in+"\n")
		require.NoError(t, err, "%q", tc.in)
		require.Equal(t, tc.want, got[0].Events, "%q", tc.in)
	}
}

// TestReadCountsCSVRejects: anything else is an ErrBadInput naming the line
// and what is accepted.
func TestReadCountsCSVRejects(t *testing.T) {
	const head = "time,tenant,source,count\n"
	const ok = "2025-03-03T00:00:00Z,a,b,1\n"
	row := func(time, count string) string { return head + ok + time + ",a,b," + count + "\n" }
	for _, tc := range []struct{ in, want string }{
		{row("2025-03-03T00:01:00Z", "2.5"), `line 3: count "2.5" is not a whole non-negative number`},
		{row("2025-03-03T00:01:00Z", "-1"), `line 3: count "-1" is not a whole non-negative number`},
		{row("2025-03-03T00:01:00Z", "-1.0"), `line 3: count "-1.0" is not a whole non-negative number`},
		{row("2025-03-03T00:01:00Z", "+1.0"), `line 3: count "+1.0" is not a whole`},
		{row("2025-03-03T00:01:00Z", "NaN"), `line 3: count "NaN" is not a whole`},
		{row("2025-03-03T00:01:00Z", "Inf"), `line 3: count "Inf" is not a whole`},
		{row("2025-03-03T00:01:00Z", "1e300"), `line 3: count "1e300" is not a whole`},
		{row("2025-03-03T00:01:00Z", "9007199254740994.0"), `line 3: count "9007199254740994.0" is not a whole`},
		{row("2025-03-03T00:01:00Z", "0x1.1p6"), `line 3: count "0x1.1p6" is not a whole`},
		{row("2025-03-03T00:01:00Z", "68.0.0"), `line 3: count "68.0.0" is not a whole`},
		{row("2025-03-03T00:01:00Z", ""), `line 3: count "" is not a whole`},
		{row("03/03/2025", "1"), `line 3: time "03/03/2025" is not RFC 3339 or "YYYY-MM-DD HH:MM:SS" (UTC)`},
		{row("1741046400", "1"), `line 3: time "1741046400" is not RFC 3339`},
		{row("2025-03-03", "1"), `line 3: time "2025-03-03" is not RFC 3339`},
		{row("2025-03-03 0:01:00", "1"), `line 3: time "2025-03-03 0:01:00" is not RFC 3339`},
		{row("2025-03-03 24:01:00", "1"), `line 3: time "2025-03-03 24:01:00" is not RFC 3339`},
		{row("2025-03-03T00:01:00 UTC", "1"), `line 3: time "2025-03-03T00:01:00 UTC" is not RFC 3339`},
		{head + ok + "2025-03-03T00:01:00Z,,b,1\n", "line 3: tenant and source are required"},
		{"time,tenant,source,cnt\n" + ok, `header "time,tenant,source,cnt": unknown column "cnt", no column "count"; want the four columns time,tenant,source,count, in any order`},
		{"time,tenant,Time,count\n" + ok, `column "Time" repeated, no column "source"; want the four columns time,tenant,source,count`},
		{"time,tenant,source,count,extra\n" + ok, `unknown column "extra"`},
		{"time,tenant,source\n2025-03-03T00:00:00Z,a,b\n", `no column "count"; want the four columns`},
		{head + "2025-03-03T00:00:00Z,a,b\n", "wrong number of fields"},
		{"\ufeff\ufefftime,tenant,source,count\n" + ok, `unknown column "\ufefftime"`},
	} {
		_, err := readCSVBoth(t, tc.in)
		require.ErrorIs(t, err, ErrBadInput, "%q", tc.in)
		require.ErrorContains(t, err, tc.want, "%q", tc.in)
	}
}

// TestCSVRowsAllocs: a row in the other accepted forms allocates no more than
// a canonical one (the fallbacks do not fail a parse first). The allocations
// per row are those of 400 rows less those of 200, without the header's.
func TestCSVRowsAllocs(t *testing.T) {
	allocs := func(head, format string, rows int) float64 {
		var b bytes.Buffer
		b.WriteString(head)
		for i := range rows {
			fmt.Fprintf(&b, format, i%60)
		}
		in := b.Bytes()
		return testing.AllocsPerRun(10, func() {
			r, err := newCSVRows(bytes.NewReader(in))
			require.NoError(t, err)
			for {
				if _, _, err := r.next(); err == io.EOF {
					break
				} else {
					require.NoError(t, err)
				}
			}
		})
	}
	perRow := func(head, format string) float64 {
		return (allocs(head, format, 400) - allocs(head, format, 200)) / 200
	}
	canonical := perRow("time,tenant,source,count\n", "2025-03-03T00:%02d:00Z,acme,fw,68\n")
	for _, format := range []string{
		"acme,fw,2025-03-03 00:%02d:00,68.0\n",
		"acme,fw,2025-03-03T00:%02d:00.000, 6.8e1 \n",
	} {
		require.LessOrEqual(t, perRow("\ufefftenant,source,time,count\n", format), canonical, format)
	}
}

// FuzzReadCountsCSV: any input is either read, every row with a tenant and a
// source, or refused as ErrBadInput — never a panic or another error.
func FuzzReadCountsCSV(f *testing.F) {
	for _, seed := range []string{
		"time,tenant,source,count\n2025-03-03T00:01:00Z,acme,fw,5\n",
		"\ufefftenant,source,time,count\nacme,fw,2025-03-03 00:01:00.5,7.0\n",
		"count,source,time,tenant\n6.8e1,\"a,b\",2025-03-03T00:01:00+01:00,x\n",
		"time,tenant,source,count\n2025-03-03 00:01:00,a,b,2.5\n",
		"time,tenant,source\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		counts, err := ReadCountsCSV(bytes.NewReader(in))
		if err != nil {
			require.ErrorIs(t, err, ErrBadInput)
			return
		}
		for _, c := range counts {
			require.NotEmpty(t, c.Tenant)
			require.NotEmpty(t, c.Source)
		}
	})
}
