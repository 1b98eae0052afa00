package decode

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fixture reads a file of testdata/envelopes (see its README for what each
// is modelled on).
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "envelopes", name))
	require.NoError(t, err)
	return []byte(strings.TrimRight(string(b), "\n"))
}

var nov30 = time.Date(2026, 11, 30, 8, 15, 2, 0, time.UTC)

// Each envelope's defaults (CONTRACT.md, "More envelopes") on a record as its
// producer writes it, auto-detected and with the topic's format forced.
func TestObjectEnvelopes(t *testing.T) {
	for _, c := range []struct {
		file   string
		format Format
		want   ev
	}{
		{"ecs-elastic-agent.json", FormatECS, ev{"acme", "system.auth", nov30.Add(123 * time.Millisecond)}},
		{"ecs-cloud-account.json", FormatECS, ev{"123456789012", "aws.cloudtrail", nov30}},
		{"ocsf-security-lake.json", FormatOCSF, ev{"123456789012", "CloudTrail", nov30.Add(123 * time.Millisecond)}},
		{"gcp-cloudaudit.json", FormatGCP, ev{"acme-prod", "cloudaudit.googleapis.com/activity", nov30.Add(123456 * time.Microsecond)}},
		{"hec-event.json", FormatHEC, ev{"acme", "pan:traffic", nov30.Add(123 * time.Millisecond)}},
	} {
		for _, format := range []Format{FormatAuto, c.format} {
			t.Run(c.file+"/"+string(format), func(t *testing.T) {
				d, err := New(FieldConfig{Format: format})
				require.NoError(t, err)
				r := decodeAll(d, fixture(t, c.file))
				require.Len(t, r.events, 1, "rejects: %+v", r.rejects)
				require.Equal(t, c.want.Tenant, r.events[0].Tenant)
				require.Equal(t, c.want.Source, r.events[0].Source)
				require.True(t, c.want.Time.Equal(r.events[0].Time), "time %v", r.events[0].Time)
			})
		}
	}
}

// Each envelope's fallbacks, and a rejection naming the envelope's fields.
func TestObjectEnvelopeFallbacks(t *testing.T) {
	d, err := New(FieldConfig{})
	require.NoError(t, err)
	for _, c := range []struct {
		name, msg string
		want      ev
		reason    Reason
		detail    string
	}{
		{name: "ecs: cloud.account.id, event.dataset", msg: `{"@timestamp":"2026-11-30T08:15:02Z","ecs":{"version":"8"},"cloud":{"account":{"id":"a1"}},"event":{"dataset":"okta.system"}}`,
			want: ev{"a1", "okta.system", nov30}},
		{name: "ecs: data_stream marks it too", msg: `{"@timestamp":"2026-11-30T08:15:02Z","data_stream":{"dataset":"fw"},"organization":{"id":"o"}}`,
			want: ev{"o", "fw", nov30}},
		{name: "ecs: no tenant", msg: `{"@timestamp":"2026-11-30T08:15:02Z","ecs":{"version":"8"},"data_stream":{"dataset":"fw"},"tenant":"t"}`,
			reason: ReasonMissingTenant, detail: "no tenant field among [organization.id cloud.account.id]"},
		{name: "ocsf: metadata.tenant_uid, class_name", msg: `{"class_uid":4001,"class_name":"Network Activity","metadata":{"tenant_uid":"t9","product":{}},"time":1796026502000}`,
			want: ev{"t9", "Network Activity", nov30}},
		{name: "ocsf: time must be a time", msg: `{"class_uid":4001,"class_name":"x","metadata":{"tenant_uid":"t9"},"time":"soon"}`,
			reason: ReasonBadTime, detail: "time field time"},
		{name: "gcp: logName without /logs/", msg: `{"logName":"projects/p","resource":{"labels":{"project_id":"p"}},"timestamp":"2026-11-30T08:15:02Z"}`,
			reason: ReasonMissingSource, detail: "no /logs/ segment in logName"},
		{name: "gcp: bad escape in the log id", msg: `{"logName":"projects/p/logs/a%2","resource":{"labels":{"project_id":"p"}},"timestamp":"2026-11-30T08:15:02Z"}`,
			reason: ReasonMissingSource, detail: "logName"},
		{name: "gcp: organization logs", msg: `{"logName":"organizations/42/logs/cloudaudit.googleapis.com%2Fdata_access","resource":{"labels":{"project_id":"p"}},"timestamp":"2026-11-30T08:15:02Z"}`,
			want: ev{"p", "cloudaudit.googleapis.com/data_access", nov30}},
		{name: "hec: index when no fields.tenant, epoch string", msg: `{"event":{"a":1},"sourcetype":"aws:cloudtrail","index":"main","time":"1796026502"}`,
			want: ev{"main", "aws:cloudtrail", nov30}},
		{name: "plain: not an envelope", msg: `{"tenant":"t","source":"s","time":"2026-11-30T08:15:02Z","event":"x"}`,
			want: ev{"t", "s", nov30}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := decodeAll(d, []byte(c.msg))
			if c.reason != "" {
				require.Len(t, r.rejects, 1, "events: %+v", r.events)
				require.Equal(t, c.reason, r.rejects[0].Reason, r.rejects[0].Detail)
				require.Contains(t, r.rejects[0].Detail, c.detail)
				return
			}
			require.Len(t, r.events, 1, "rejects: %+v", r.rejects)
			require.Equal(t, c.want.Tenant, r.events[0].Tenant)
			require.Equal(t, c.want.Source, r.events[0].Source)
			require.True(t, c.want.Time.Equal(r.events[0].Time), "time %v", r.events[0].Time)
		})
	}
}

// A topic's own paths come before an envelope's.
func TestObjectEnvelopeUserPathsFirst(t *testing.T) {
	d, err := New(FieldConfig{Tenant: []string{"labels.customer"}})
	require.NoError(t, err)
	r := decodeAll(d, []byte(`{"@timestamp":"2026-11-30T08:15:02Z","ecs":{"version":"8"},"labels":{"customer":"c7"},"organization":{"id":"o"},"data_stream":{"dataset":"fw"}}`))
	require.Len(t, r.events, 1, "%+v", r.rejects)
	require.Equal(t, "c7", r.events[0].Tenant)
}

// OTLP/JSON logs: every log record counts, tenant and source from its
// resource's attributes, time from timeUnixNano or, when it is 0 or absent,
// observedTimeUnixNano.
func TestOTLPLogs(t *testing.T) {
	for _, format := range []Format{FormatAuto, FormatOTLP} {
		d, err := New(FieldConfig{Format: format})
		require.NoError(t, err)
		r := decodeAll(d, fixture(t, "otlp-logs.json"))
		require.Empty(t, r.rejects)
		require.Equal(t, []ev{
			{"acme", "auth-gateway", nov30.Add(123 * time.Millisecond)},
			{"acme", "auth-gateway", nov30.Add(time.Second)},
			{"123456789012", "billing", nov30.Add(2 * time.Second)},
		}, r.events)
	}
}

func TestOTLPRejects(t *testing.T) {
	d, err := New(FieldConfig{})
	require.NoError(t, err)
	res := func(attrs, records string) string {
		return `{"resourceLogs":[{"resource":{"attributes":[` + attrs + `]},"scopeLogs":[{"logRecords":[` + records + `]}]}]}`
	}
	svc := `{"key":"service.name","value":{"stringValue":"s"}}`
	ten := `{"key":"service.namespace","value":{"stringValue":"ns"}}`
	rec := `{"timeUnixNano":"1796026502000000000"}`
	for _, c := range []struct {
		name, msg string
		events    int
		reasons   []Reason
		detail    string
	}{
		{"no tenant: each record rejected", res(svc, rec+","+rec), 0, []Reason{ReasonMissingTenant, ReasonMissingTenant}, "no otlp resource attribute among [tenant.id cloud.account.id service.namespace]"},
		{"no source", res(ten, rec), 0, []Reason{ReasonMissingSource}, "[service.name]"},
		{"a tenant that is no string", res(`{"key":"tenant.id","value":{"boolValue":true}},`+svc, rec), 0, []Reason{ReasonBadTenant}, "tenant attribute tenant.id has no stringValue"},
		{"intValue tenant", res(`{"key":"tenant.id","value":{"intValue":"42"}},`+svc, rec), 1, nil, ""},
		{"no time", res(ten+","+svc, `{"body":{}}`), 0, []Reason{ReasonMissingTime}, "neither timeUnixNano nor observedTimeUnixNano"},
		{"bad time", res(ten+","+svc, `{"timeUnixNano":"yesterday"}`), 0, []Reason{ReasonBadTime}, `otlp timeUnixNano "yesterday"`},
		{"a record that is no object", res(ten+","+svc, rec+`,42`), 1, []Reason{ReasonNotObject}, "record 1: logRecords element is a number"},
		{"no records at all", `{"resourceLogs":[{"resource":{},"scopeLogs":[]}]}`, 0, []Reason{ReasonEmptyEnvelope}, "no logRecords"},
		{"escaped attribute key", res(`{"key":"tenant\u002eid","value":{"stringValue":"t\u00e9"}},`+svc, rec), 1, nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := decodeAll(d, []byte(c.msg))
			require.Len(t, r.events, c.events, "%+v", r.rejects)
			require.Len(t, r.rejects, len(c.reasons), "%+v", r.rejects)
			for i, want := range c.reasons {
				require.Equal(t, want, r.rejects[i].Reason, r.rejects[i].Detail)
				require.Contains(t, r.rejects[i].Detail, c.detail)
			}
		})
	}
	forced, err := New(FieldConfig{Format: FormatOTLP})
	require.NoError(t, err)
	r := decodeAll(forced, []byte(`{"tenant":"t","source":"s","time":1796026502}`))
	require.Len(t, r.rejects, 1)
	require.Equal(t, ReasonMissingEnvelope, r.rejects[0].Reason)
}

// Syslog and CEF lines as shippers and appliances write them (fixtures:
// the RFCs' own examples, rsyslog omkafka's and syslog-ng's default lines,
// ArcSight CEF), auto-detected and with the format forced.
func TestLines(t *testing.T) {
	arrival := time.Date(2026, 11, 30, 8, 15, 5, 0, time.UTC)
	for _, c := range []struct {
		file   string
		format Format
		want   ev
	}{
		{"syslog-rfc5424.txt", FormatSyslog, ev{"mymachine.example.com", "su", nov30.Add(3 * time.Millisecond)}},
		{"syslog-rfc5424-sd.txt", FormatSyslog, ev{"192.0.2.1", "myproc", nov30.Add(3 * time.Microsecond)}},
		{"syslog-rfc3164.txt", FormatSyslog, ev{"mymachine", "su", nov30}},
		{"syslog-rsyslog-omkafka.txt", FormatSyslog, ev{"web-1", "sshd", nov30.Add(123456 * time.Microsecond)}},
		{"syslog-syslog-ng-kafka.txt", FormatSyslog, ev{"fw-2", "kernel", nov30}},
		{"cef-bare.txt", FormatCEF, ev{"sensor-7.acme", "threatmanager", nov30}},
		{"cef-syslog.txt", FormatCEF, ev{"fw-1.acme", "FortiGate", nov30}},
	} {
		for _, format := range []Format{FormatAuto, c.format} {
			t.Run(c.file+"/"+string(format), func(t *testing.T) {
				d, err := New(FieldConfig{Format: format})
				require.NoError(t, err)
				var got []ev
				var rejects []string
				d.DecodeAt(append(fixture(t, c.file), '\n'), arrival,
					func(e Event) { got = append(got, ev{string(e.Tenant), string(e.Source), e.Time}) },
					func(r Reason, detail string) { rejects = append(rejects, string(r)+": "+detail) })
				require.Empty(t, rejects)
				require.Len(t, got, 1)
				require.Equal(t, c.want.Tenant, got[0].Tenant)
				require.Equal(t, c.want.Source, got[0].Source)
				require.True(t, c.want.Time.Equal(got[0].Time), "time %v", got[0].Time)
			})
		}
	}
}

// RFC 3164 has no year: it is the one that puts the time nearest arrival.
func TestSyslog3164Year(t *testing.T) {
	d, err := New(FieldConfig{})
	require.NoError(t, err)
	for _, c := range []struct {
		line    string
		arrival time.Time
		want    time.Time
	}{
		{"<13>Dec 31 23:59:58 h app: x", time.Date(2027, 1, 1, 0, 0, 3, 0, time.UTC), time.Date(2026, 12, 31, 23, 59, 58, 0, time.UTC)},
		{"<13>Jan  1 00:00:01 h app: x", time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 1, 0, time.UTC)},
		{"<13>Feb 29 12:00:00 h app: x", time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2028, 2, 29, 12, 0, 0, 0, time.UTC)},
		{"Nov 30 08:15:02 h app[1]: without PRI", nov30, nov30},
	} {
		var got time.Time
		n, _ := d.DecodeAt([]byte(c.line), c.arrival, func(e Event) { got = e.Time }, nil)
		require.Equal(t, 1, n, c.line)
		require.Equal(t, c.want, got, c.line)
	}
}

func TestLineRejects(t *testing.T) {
	d, err := New(FieldConfig{})
	require.NoError(t, err)
	for _, c := range []struct {
		line   string
		reason Reason
		detail string
	}{
		{"<999>1 2026-11-30T08:15:02Z h a - - - x", ReasonBadSyslog, "PRI"},
		{"<34>1 2026-11-30T08:15:02Z", ReasonBadSyslog, "RFC 5424 header"},
		{"<34>1 - h a - - - no time", ReasonMissingTime, "syslog: no TIMESTAMP"},
		{"<34>1 2026-11-30T08:15:02Z - a - - - x", ReasonMissingTenant, "syslog: no HOSTNAME"},
		{"<34>1 2026-11-30T08:15:02Z h - - - - x", ReasonMissingSource, "no APP-NAME/TAG"},
		{"<34>1 2026-13-30T08:15:02Z h a - - - x", ReasonBadTime, `time field TIMESTAMP "2026-13-30T08:15:02Z"`},
		{"<34>Nov 31 08:15:02 h a: 31 November", ReasonBadTime, "TIMESTAMP"},
		{"<34>Nov 30 08:15:02 hostonly", ReasonBadSyslog, "no TAG after the HOSTNAME"},
		{"CEF:0|Vendor|Product|1.0|100|name", ReasonBadCEF, "7 fields"},
		{"CEF:0|V|P|1|100|n|5|src=1.2.3.4", ReasonMissingTenant, "cef: no dvchost"},
		{"CEF:0|V||1|100|n|5|dvchost=h rt=1796026502000", ReasonMissingSource, "cef: no Device Product"},
		{"CEF:0|V|P|1|100|n|5|dvchost=h", ReasonMissingTime, "cef: no rt"},
		{"CEF:0|V|P|1|100|n|5|dvchost=h rt=Nov 30 2026 8:15:02", ReasonBadTime, `time field rt "Nov 30 2026 8:15:02"`},
		{"<34>1 2026-11-30T08:15:02Z h\x01x a - - - x", ReasonBadTenant, "tenant field HOSTNAME"},
	} {
		r := decodeAll(d, []byte(c.line))
		require.Len(t, r.rejects, 1, "%q: %+v", c.line, r.events)
		require.Equal(t, c.reason, r.rejects[0].Reason, "%q: %s", c.line, r.rejects[0].Detail)
		require.Contains(t, r.rejects[0].Detail, c.detail, c.line)
	}
	// A forced line format refuses JSON; json refuses lines.
	for _, f := range []Format{FormatSyslog, FormatCEF} {
		d, err := New(FieldConfig{Format: f})
		require.NoError(t, err)
		r := decodeAll(d, []byte(`{"tenant":"t","source":"s","time":1796026502}`))
		require.Equal(t, ReasonMissingEnvelope, r.rejects[0].Reason)
	}
	d, err = New(FieldConfig{Format: FormatJSON})
	require.NoError(t, err)
	r := decodeAll(d, fixture(t, "syslog-rfc5424.txt"))
	require.Equal(t, ReasonInvalidJSON, r.rejects[0].Reason)
	// fixed_source names every line's source.
	d, err = New(FieldConfig{FixedSource: "firewall"})
	require.NoError(t, err)
	r = decodeAll(d, fixture(t, "cef-syslog.txt"))
	require.Equal(t, "firewall", r.events[0].Source)
}

// envelopeFixtures are the fixture files, by format.
var envelopeFixtures = []struct{ name, file string }{
	{"ecs", "ecs-elastic-agent.json"},
	{"ocsf", "ocsf-security-lake.json"},
	{"gcp", "gcp-cloudaudit.json"},
	{"hec", "hec-event.json"},
	{"otlp_3", "otlp-logs.json"},
	{"syslog_5424", "syslog-rfc5424-sd.txt"},
	{"syslog_3164", "syslog-rfc3164.txt"},
	{"syslog_rsyslog", "syslog-rsyslog-omkafka.txt"},
	{"cef_syslog", "cef-syslog.txt"},
}

// Every envelope and line format decodes without allocating once warm, like
// the JSON ones before them.
func TestEnvelopesNoAllocs(t *testing.T) {
	d, err := New(FieldConfig{})
	require.NoError(t, err)
	for _, f := range envelopeFixtures {
		msg := fixture(t, f.file)
		count := 0
		emit := func(Event) { count++ }
		d.DecodeAt(msg, nov30, emit, nil)
		require.Zero(t, testing.AllocsPerRun(50, func() { d.DecodeAt(msg, nov30, emit, nil) }), f.name)
		require.NotZero(t, count, f.name)
	}
}

// BenchmarkEnvelopes: ns per event (ns/op over events per message), MB/s
// and allocations per message, one per envelope and line format (make bench).
func BenchmarkEnvelopes(b *testing.B) {
	for _, f := range envelopeFixtures {
		b.Run(f.name, func(b *testing.B) {
			d, err := New(FieldConfig{})
			require.NoError(b, err)
			msg := fixture(b, f.file)
			per, _ := d.DecodeAt(msg, nov30, nil, nil)
			count := 0
			emit := func(Event) { count++ }
			reject := func(r Reason, detail string) { b.Fatalf("rejected: %s: %s", r, detail) }
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				d.DecodeAt(msg, nov30, emit, reject)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(count), "ns/event")
			if count != per*b.N {
				b.Fatalf("%d events, want %d", count, per*b.N)
			}
		})
	}
}

// Mapping rules: a static tenant, and a capture from a name, for every
// format; a name that does not match its pattern is rejected.
func TestMappingRules(t *testing.T) {
	d, err := New(FieldConfig{TenantPattern: `^([a-z0-9]+)-`, SourcePattern: `^(?:pan:)?(.+)$`})
	require.NoError(t, err)
	r := decodeAll(d, []byte(`{"tenant":"acme-fw-01","source":"pan:traffic","time":1796026502}`))
	require.Equal(t, []ev{{"acme", "traffic", nov30}}, r.events)
	var got []ev
	d.DecodeAt([]byte("<34>1 2026-11-30T08:15:02Z globex-web-3 nginx - - - x"), nov30, func(e Event) { got = append(got, ev{string(e.Tenant), string(e.Source), e.Time}) }, nil)
	require.Equal(t, []ev{{"globex", "nginx", nov30}}, got)
	r = decodeAll(d, []byte(`{"tenant":"nodash","source":"s","time":1796026502}`))
	require.Len(t, r.rejects, 1)
	require.Equal(t, ReasonBadTenant, r.rejects[0].Reason)
	require.Contains(t, r.rejects[0].Detail, `does not match tenant_pattern "^([a-z0-9]+)-"`)

	fixed, err := New(FieldConfig{FixedTenant: "acme"})
	require.NoError(t, err)
	r = decodeAll(fixed, fixture(t, "otlp-logs.json"))
	require.Len(t, r.events, 3)
	for _, e := range r.events {
		require.Equal(t, "acme", e.Tenant)
	}
	r = decodeAll(fixed, []byte(`{"source":"s","time":1796026502}`))
	require.Equal(t, []ev{{"acme", "s", nov30}}, r.events, "no tenant field needed")

	for _, bad := range []FieldConfig{{TenantPattern: "("}, {SourcePattern: "[z-a]"}, {FixedTenant: "a\nb"}} {
		_, err := New(bad)
		require.Error(t, err)
	}
}

// Names with C1 control characters (a CSI escape, U+009B) are rejected like
// C0 ones, in JSON (raw or escaped) and in lines alike.
func TestC1ControlsInNames(t *testing.T) {
	d, err := New(FieldConfig{})
	require.NoError(t, err)
	for _, msg := range []string{
		"{\"tenant\":\"ac\u009bme\",\"source\":\"s\",\"time\":1796026502}",
		`{"tenant":"ac\u009bme","source":"s","time":1796026502}`,
		"{\"tenant\":\"acme\",\"source\":\"s\u0085\",\"time\":1796026502}",
		"<34>1 2026-11-30T08:15:02Z ho\u009bst app - - - x",
	} {
		r := decodeAll(d, []byte(msg))
		require.Len(t, r.rejects, 1, "%q: %+v", msg, r.events)
		require.Contains(t, r.rejects[0].Detail, "control character U+00", msg)
	}
	r := decodeAll(d, []byte("{\"tenant\":\"Zürich\u00a0AG\",\"source\":\"s\",\"time\":1796026502}"))
	require.Len(t, r.events, 1, "U+00A0 and other non-control characters stay")
}
