package decode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// ev is a decoded event with its slices copied, as a caller keeps it.
type ev struct {
	Tenant, Source string
	Time           time.Time
}

type rej struct {
	Reason Reason
	Detail string
}

type result struct {
	events   []ev
	rejects  []rej
	nEvents  int
	nRejects int
}

func decodeAll(d *Decoder, msg []byte) result {
	var r result
	r.nEvents, r.nRejects = d.Decode(msg,
		func(e Event) { r.events = append(r.events, ev{string(e.Tenant), string(e.Source), e.Time}) },
		func(reason Reason, detail string) { r.rejects = append(r.rejects, rej{reason, detail}) })
	return r
}

// want is an expected rejection: a reason and a substring of its detail.
type want struct {
	reason Reason
	detail string
}

var t0 = time.Date(2024, 9, 5, 10, 11, 12, 0, time.UTC)

// decodeCase is a message, the configuration to decode it with and what
// that gives.
type decodeCase struct {
	name    string
	cfg     FieldConfig
	msg     string
	events  []ev
	rejects []want
}

// decodeCases are the cases of TestDecode; TestDecodeMatchesReference runs
// them too.
func decodeCases() []decodeCase {
	long := strings.Repeat("x", 257)
	return []decodeCase{
		// Message-level rejections.
		{name: "oversized", cfg: FieldConfig{MaxMessageBytes: 40},
			msg:     `{"tenant":"t","source":"s","time":1725531072}`,
			rejects: []want{{ReasonOversized, "message is 45 bytes, limit 40"}}},
		{name: "exactly the limit", cfg: FieldConfig{MaxMessageBytes: 45},
			msg:    `{"tenant":"t","source":"s","time":1725531072}`,
			events: []ev{{"t", "s", t0}}},
		{name: "invalid utf8", msg: "{\"tenant\":\"a\xffb\",\"source\":\"s\",\"time\":1725531072}",
			rejects: []want{{ReasonInvalidUTF8, "invalid UTF-8 at byte 12"}}},
		{name: "overlong utf8 encoding", msg: "{\"tenant\":\"\xc0\xaf\",\"source\":\"s\",\"time\":1725531072}",
			rejects: []want{{ReasonInvalidUTF8, "at byte 11"}}},
		{name: "empty message", msg: ``, rejects: []want{{ReasonInvalidJSON, "invalid JSON at byte 0: unexpected end of input"}}},
		{name: "whitespace only", msg: " \n", rejects: []want{{ReasonInvalidJSON, "invalid JSON"}}},
		{name: "truncated", msg: `{"tenant":"t","source":`, rejects: []want{{ReasonInvalidJSON, `invalid JSON at byte 23: unexpected end of input near "t\":\"t\",\"source\":"`}}},
		{name: "trailing comma", msg: `{"tenant":"t",}`, rejects: []want{{ReasonInvalidJSON, "at byte 14: unexpected '}', want an object key"}}},
		{name: "trailing garbage", msg: `{"tenant":"t"} x`, rejects: []want{{ReasonInvalidJSON, "at byte 15: unexpected 'x' after the top-level value"}}},
		{name: "two values", msg: `{} {}`, rejects: []want{{ReasonInvalidJSON, ""}}},
		{name: "NaN", msg: `{"tenant":"t","source":"s","time":1725531072,"x":NaN}`, rejects: []want{{ReasonInvalidJSON, "at byte 49: unexpected 'N'"}}},
		{name: "malformed number", msg: `{"tenant":"t","source":"s","time":1725531072,"x":1.2.3}`, rejects: []want{{ReasonInvalidJSON, "at byte 52: unexpected '.', want ',' or '}'"}}},
		{name: "number without digits", msg: `{"x":-}`, rejects: []want{{ReasonInvalidJSON, "at byte 6: number without digits"}}},
		{name: "number without fraction digits", msg: `[1.]`, rejects: []want{{ReasonInvalidJSON, "at byte 3: number without fraction digits"}}},
		{name: "number without exponent digits", msg: `[1e+]`, rejects: []want{{ReasonInvalidJSON, "at byte 4: number without exponent digits"}}},
		{name: "bad literal", msg: `{"x":tru}`, rejects: []want{{ReasonInvalidJSON, "at byte 5: unexpected 't'"}}},
		{name: "missing colon", msg: `{"x" 1}`, rejects: []want{{ReasonInvalidJSON, "at byte 5: unexpected '1', want ':'"}}},
		{name: "unclosed array", msg: `{"x":[1,2}`, rejects: []want{{ReasonInvalidJSON, "at byte 9: unexpected '}', want ',' or ']'"}}},
		{name: "unterminated string", msg: `{"x":"abc`, rejects: []want{{ReasonInvalidJSON, "unterminated string"}}},
		{name: "short unicode escape", msg: `{"x":"\u12"}`, rejects: []want{{ReasonInvalidJSON, `at byte 6: invalid escape "\\u12\"}"`}}},
		{name: "leading zero", msg: `{"tenant":"t","source":"s","time":01725531072}`, rejects: []want{{ReasonInvalidJSON, "at byte 35: unexpected '1'"}}},
		{name: "unknown escape", msg: `{"tenant":"t\q","source":"s","time":1725531072}`, rejects: []want{{ReasonInvalidJSON, `at byte 12: invalid escape "\\q" in string`}}},
		{name: "raw control char in string", msg: "{\"tenant\":\"a\tb\",\"source\":\"s\",\"time\":1725531072}", rejects: []want{{ReasonInvalidJSON, "at byte 12: control character 0x09 in string"}}},
		{name: "raw control char in key", msg: "{\"a\x01\":1}", rejects: []want{{ReasonInvalidJSON, "at byte 3: control character 0x01 in string"}}},
		{name: "single quotes", msg: `{'tenant':'t'}`, rejects: []want{{ReasonInvalidJSON, ""}}},
		{name: "too deep", msg: strings.Repeat(`{"a":`, 257) + `1` + strings.Repeat(`}`, 257), rejects: []want{{ReasonInvalidJSON, "at byte 1280: nesting deeper than 256 levels"}}},
		{name: "deepest accepted", msg: `{"tenant":"t","source":"s","time":1725531072,"x":` + strings.Repeat(`[`, 254) + `{}` + strings.Repeat(`]`, 254) + `}`,
			events: []ev{{"t", "s", t0}}},
		{name: "array", msg: `[{"tenant":"t","source":"s","time":1725531072}]`, rejects: []want{{ReasonNotObject, "top-level value is an array, want an object"}}},
		{name: "string", msg: `"tenant"`, rejects: []want{{ReasonNotObject, "a string"}}},
		{name: "number", msg: `42`, rejects: []want{{ReasonNotObject, "a number"}}},
		{name: "null", msg: `null`, rejects: []want{{ReasonNotObject, "null"}}},
		{name: "bool", msg: ` true `, rejects: []want{{ReasonNotObject, "a boolean"}}},

		// Plain events.
		{name: "plain defaults", msg: `{"tenant":"acme","source":"nginx","time":"2024-09-05T10:11:12Z"}`,
			events: []ev{{"acme", "nginx", t0}}},
		{name: "second defaults", msg: `{"tenantId":"acme","category":"audit","@timestamp":"2024-09-05T10:11:12.5Z"}`,
			events: []ev{{"acme", "audit", t0.Add(500 * time.Millisecond)}}},
		{name: "third defaults", msg: `{"tenant_id":"acme","log_type":"fw","timestamp":1725531072123}`,
			events: []ev{{"acme", "fw", t0.Add(123 * time.Millisecond)}}},
		{name: "fourth defaults", msg: `{"TenantId":"acme","Type":"SigninLogs","TimeGenerated":"2024-09-05T10:11:12.1234567Z"}`,
			events: []ev{{"acme", "SigninLogs", t0.Add(123456700)}}},
		{name: "first present path wins", msg: `{"TenantId":"d","tenantId":"b","tenant":"a","Type":"y","source":"x","timestamp":1,"time":1725531072}`,
			events: []ev{{"a", "x", t0}}},
		{name: "null is absent", msg: `{"tenant":null,"tenantId":"b","source":null,"category":"c","time":null,"timestamp":1725531072}`,
			events: []ev{{"b", "c", t0}}},
		{name: "escaped tenant", msg: `{"tenant":"ten\u0061nt","source":"a\/b","time":1725531072}`,
			events: []ev{{"tenant", "a/b", t0}}},
		{name: "escaped key", msg: `{"ten\u0061nt":"t","source":"s","time":1725531072}`,
			events: []ev{{"t", "s", t0}}},
		{name: "unicode tenant", msg: `{"tenant":"müller-gmbh-日本","source":"s","time":1725531072}`,
			events: []ev{{"müller-gmbh-日本", "s", t0}}},
		{name: "surrogate pair escape", msg: `{"tenant":"\ud83d\ude00","source":"s","time":1725531072}`,
			events: []ev{{"😀", "s", t0}}},
		{name: "numeric tenant is its decimal text", msg: `{"tenantId":42,"source":1234567890123456789012,"time":1725531072}`,
			events: []ev{{"42", "1234567890123456789012", t0}}},
		{name: "duplicate key: first wins", msg: `{"tenant":"a","tenant":"b","source":"s","time":1725531072}`,
			events: []ev{{"a", "s", t0}}},
		{name: "tenant of max length", msg: `{"tenant":"` + strings.Repeat("x", 256) + `","source":"s","time":1725531072}`,
			events: []ev{{strings.Repeat("x", 256), "s", t0}}},
		{name: "records not an array is a plain event", msg: `{"records":"none","tenant":"t","source":"s","time":1725531072}`,
			events: []ev{{"t", "s", t0}}},
		{name: "Records object is a plain event", msg: `{"Records":{"n":1},"tenant":"t","source":"s","time":1725531072}`,
			events: []ev{{"t", "s", t0}}},

		{name: "missing tenant", msg: `{"source":"s","time":1725531072,"Tenant":"wrong case"}`,
			rejects: []want{{ReasonMissingTenant, "no tenant field among [tenant tenantId tenant_id TenantId]"}}},
		{name: "missing source", msg: `{"tenant":"t","time":1725531072}`,
			rejects: []want{{ReasonMissingSource, "no source field among [source category log_type Type]"}}},
		{name: "missing time", msg: `{"tenant":"t","source":"s"}`,
			rejects: []want{{ReasonMissingTime, "no time field among [time @timestamp timestamp TimeGenerated]"}}},
		{name: "all missing reports tenant", msg: `{}`, rejects: []want{{ReasonMissingTenant, ""}}},
		{name: "empty tenant", msg: `{"tenant":"","source":"s","time":1725531072}`,
			rejects: []want{{ReasonBadTenant, "tenant field tenant is empty"}}},
		{name: "empty tenant is not skipped", msg: `{"tenant":"","tenantId":"b","source":"s","time":1725531072}`,
			rejects: []want{{ReasonBadTenant, "is empty"}}},
		{name: "tenant too long", msg: `{"tenant":"` + long + `","source":"s","time":1725531072}`,
			rejects: []want{{ReasonBadTenant, "is 257 bytes, longer than 256"}}},
		{name: "tenant with escaped newline", msg: `{"tenant":"a\nb","source":"s","time":1725531072}`,
			rejects: []want{{ReasonBadTenant, `contains control character 0x0a: "a\nb"`}}},
		{name: "tenant with NUL", msg: `{"tenant":"a\u0000","source":"s","time":1725531072}`,
			rejects: []want{{ReasonBadTenant, "0x00"}}},
		{name: "tenant with DEL", msg: "{\"tenant\":\"a\x7f\",\"source\":\"s\",\"time\":1725531072}",
			rejects: []want{{ReasonBadTenant, "0x7f"}}},
		{name: "tenant bool", msg: `{"tenant":true,"source":"s","time":1725531072}`,
			rejects: []want{{ReasonBadTenant, "tenant field tenant is a boolean, want a string"}}},
		{name: "tenant object", msg: `{"tenant":{"id":"x"},"source":"s","time":1725531072}`,
			rejects: []want{{ReasonBadTenant, "is an object"}}},
		{name: "tenant negative number", msg: `{"tenant":-1,"source":"s","time":1725531072}`,
			rejects: []want{{ReasonBadTenant, `is the number "-1"`}}},
		{name: "tenant fraction", msg: `{"tenant":1.5,"source":"s","time":1725531072}`,
			rejects: []want{{ReasonBadTenant, ""}}},
		{name: "tenant exponent", msg: `{"tenant":1e3,"source":"s","time":1725531072}`,
			rejects: []want{{ReasonBadTenant, ""}}},
		{name: "empty source", msg: `{"tenant":"t","source":"","time":1725531072}`,
			rejects: []want{{ReasonBadSource, "source field source is empty"}}},
		{name: "source with control char", msg: `{"tenant":"t","category":"a\u001fb","time":1725531072}`,
			rejects: []want{{ReasonBadSource, "source field category contains control character 0x1f"}}},
		{name: "source array", msg: `{"tenant":"t","source":["a"],"time":1725531072}`,
			rejects: []want{{ReasonBadSource, "is an array"}}},
		{name: "bad time yesterday", msg: `{"tenant":"t","source":"s","time":"yesterday"}`,
			rejects: []want{{ReasonBadTime, `time field time "yesterday" is not a recognised timestamp`}}},
		{name: "bad time month 13", msg: `{"tenant":"t","source":"s","time":"2024-13-01T00:00:00Z"}`,
			rejects: []want{{ReasonBadTime, ""}}},
		{name: "bad time empty", msg: `{"tenant":"t","source":"s","time":""}`,
			rejects: []want{{ReasonBadTime, `time field time "" is not`}}},
		{name: "bad time bool", msg: `{"tenant":"t","source":"s","time":true}`,
			rejects: []want{{ReasonBadTime, "time field time is a boolean, want a string or a number"}}},
		{name: "bad time 1e400", msg: `{"tenant":"t","source":"s","time":1e400}`,
			rejects: []want{{ReasonBadTime, `"1e400"`}}},
		{name: "bad time object", msg: `{"tenant":"t","source":"s","time":{"seconds":1725531072}}`,
			rejects: []want{{ReasonBadTime, "is an object"}}},
		{name: "bad time is not skipped", msg: `{"tenant":"t","source":"s","time":"soon","timestamp":1725531072}`,
			rejects: []want{{ReasonBadTime, ""}}},
		{name: "tenant checked before source and time", msg: `{"tenant":"","source":"","time":"x"}`,
			rejects: []want{{ReasonBadTenant, ""}}},

		// Paths.
		{name: "nested paths", cfg: FieldConfig{Tenant: []string{"userIdentity.accountId"}, Source: []string{"app.meta.name"}, Time: []string{"event.created"}},
			msg:    `{"userIdentity":{"type":"IAMUser","accountId":"123456789012"},"app":{"meta":{"name":"billing"}},"event":{"created":"2024-09-05T10:11:12Z"}}`,
			events: []ev{{"123456789012", "billing", t0}}},
		{name: "nested path through a non-object", cfg: FieldConfig{Tenant: []string{"org.id", "tenant"}},
			msg:    `{"org":"acme","tenant":"t","source":"s","time":1725531072}`,
			events: []ev{{"t", "s", t0}}},
		{name: "nested path does not walk arrays", cfg: FieldConfig{Tenant: []string{"orgs.0"}},
			msg:     `{"orgs":["a"],"source":"s","time":1725531072}`,
			rejects: []want{{ReasonMissingTenant, "no tenant field among [orgs.0]"}}},
		{name: "flattened dotted key", cfg: FieldConfig{Tenant: []string{"cloud.account.id"}},
			msg:    `{"cloud.account.id":"987","source":"s","time":1725531072}`,
			events: []ev{{"987", "s", t0}}},
		{name: "nested wins over flattened", cfg: FieldConfig{Tenant: []string{"cloud.account.id"}},
			msg:    `{"cloud.account.id":"flat","cloud":{"account":{"id":"nested"}},"source":"s","time":1725531072}`,
			events: []ev{{"nested", "s", t0}}},
		{name: "nested null falls back to flattened", cfg: FieldConfig{Tenant: []string{"cloud.account.id"}},
			msg:    `{"cloud":{"account":{"id":null}},"cloud.account.id":"flat","source":"s","time":1725531072}`,
			events: []ev{{"flat", "s", t0}}},
		{name: "user paths replace defaults for plain events", cfg: FieldConfig{Tenant: []string{"org"}, Source: []string{"svc"}, Time: []string{"ts"}},
			msg:     `{"tenant":"t","source":"s","time":1725531072,"org":"o","svc":"v"}`,
			rejects: []want{{ReasonMissingTime, "no time field among [ts]"}}},
		{name: "user paths", cfg: FieldConfig{Tenant: []string{"org"}, Source: []string{"svc"}, Time: []string{"ts"}},
			msg:    `{"org":"o","svc":"v","ts":1725531072.5}`,
			events: []ev{{"o", "v", t0.Add(500 * time.Millisecond)}}},
		{name: "fixed source ignores source fields", cfg: FieldConfig{FixedSource: "k8s-audit"},
			msg:    `{"tenant":"t","source":"s","time":1725531072}`,
			events: []ev{{"t", "k8s-audit", t0}}},
		{name: "fixed source needs no source field", cfg: FieldConfig{FixedSource: "k8s-audit"},
			msg:    `{"tenant":"t","time":1725531072}`,
			events: []ev{{"t", "k8s-audit", t0}}},
		{name: "max name bytes", cfg: FieldConfig{MaxNameBytes: 3},
			msg:     `{"tenant":"abc","source":"abcd","time":1725531072}`,
			rejects: []want{{ReasonBadSource, "is 4 bytes, longer than 3"}}},
		{name: "format json ignores envelopes", cfg: FieldConfig{Format: FormatJSON},
			msg:    `{"records":[{"tenantId":"a","category":"c","time":"2024-09-05T10:11:12Z"}],"tenant":"top","source":"s","time":1725531072}`,
			events: []ev{{"top", "s", t0}}},
		{name: "format json envelope without top-level fields", cfg: FieldConfig{Format: FormatJSON},
			msg:     `{"records":[{"tenantId":"a","category":"c","time":"2024-09-05T10:11:12Z"}]}`,
			rejects: []want{{ReasonMissingTenant, "no tenant field among"}}},

		// Azure Monitor records envelope.
		{name: "azure records",
			msg: `{"records":[
				{"time":"2024-09-05T10:11:12.1234567Z","tenantId":"72f988bf","category":"SignInLogs","operationName":"Sign-in activity"},
				{"time":"2024-09-05T10:11:12Z","resourceId":"/SUBSCRIPTIONS/abc-123/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV","category":"AuditEvent"}]}`,
			events: []ev{{"72f988bf", "SignInLogs", t0.Add(123456700)}, {"abc-123", "AuditEvent", t0}}},
		{name: "azure resourceId letter cases",
			msg: `{"records":[
				{"time":1725531072,"category":"c","resourceId":"/subscriptions/lower/resourceGroups/rg"},
				{"time":1725531072,"category":"c","resourceId":"/Subscriptions/Mixed-Case"},
				{"time":1725531072,"category":"c","resourceId":"/tenants/T1/providers/Microsoft.aadiam"},
				{"time":1725531072,"category":"c","resourceId":"/TENANTS/T2/PROVIDERS/MICROSOFT.AADIAM"},
				{"time":1725531072,"category":"c","resourceId":"/providers/x/sUbScRiPtIoNs/odd/y"}]}`,
			events: []ev{{"lower", "c", t0}, {"Mixed-Case", "c", t0}, {"T1", "c", t0}, {"T2", "c", t0}, {"odd", "c", t0}}},
		{name: "azure tenantId wins over resourceId",
			msg:    `{"records":[{"time":1725531072,"category":"c","tenantId":"tid","resourceId":"/subscriptions/sub/x"}]}`,
			events: []ev{{"tid", "c", t0}}},
		{name: "azure natives only with default paths",
			msg:     `{"records":[{"tenant":"t","source":"s","timestamp":1725531072}]}`,
			rejects: []want{{ReasonMissingTenant, "record 0: no tenant field among [tenantId resourceId]"}}},
		{name: "azure resourceId without marker",
			msg:     `{"records":[{"time":1725531072,"category":"c","resourceId":"/providers/Microsoft.Foo/bar"}]}`,
			rejects: []want{{ReasonMissingTenant, `record 0: no tenant field among [tenantId] and no /tenants/ or /subscriptions/ segment in resourceId "/providers/Microsoft.Foo/bar"`}}},
		{name: "azure resourceId empty segment",
			msg:     `{"records":[{"time":1725531072,"category":"c","resourceId":"/subscriptions//resourceGroups/rg"}]}`,
			rejects: []want{{ReasonBadTenant, "record 0: tenant from resourceId"}}},
		{name: "azure resourceId not a string",
			msg:     `{"records":[{"time":1725531072,"category":"c","resourceId":7}]}`,
			rejects: []want{{ReasonBadTenant, "record 0: tenant field resourceId is a number, want a string"}}},
		{name: "azure missing category",
			msg:     `{"records":[{"time":1725531072,"tenantId":"t","Type":"x"}]}`,
			rejects: []want{{ReasonMissingSource, "record 0: no source field among [category]"}}},
		{name: "azure missing time",
			msg:     `{"records":[{"tenantId":"t","category":"c","TimeGenerated":"2024-09-05T10:11:12Z"}]}`,
			rejects: []want{{ReasonMissingTime, "record 0: no time field among [time]"}}},
		{name: "azure user paths first, then natives",
			cfg: FieldConfig{Tenant: []string{"properties.customerId"}, Source: []string{"properties.kind"}, Time: []string{"properties.at"}},
			msg: `{"records":[
				{"time":"2024-09-05T10:11:12Z","tenantId":"native","category":"cat","properties":{"customerId":"cust","kind":"k","at":1725531073}},
				{"time":"2024-09-05T10:11:12Z","tenantId":"native","category":"cat"}]}`,
			events: []ev{{"cust", "k", t0.Add(time.Second)}, {"native", "cat", t0}}},
		{name: "azure user paths in missing detail",
			cfg:     FieldConfig{Tenant: []string{"properties.customerId"}},
			msg:     `{"records":[{"time":"2024-09-05T10:11:12Z","category":"cat"}]}`,
			rejects: []want{{ReasonMissingTenant, "record 0: no tenant field among [properties.customerId tenantId resourceId]"}}},
		{name: "azure keeps category with fixed source", cfg: FieldConfig{FixedSource: "azure"},
			msg:    `{"records":[{"time":1725531072,"tenantId":"t","category":"AuditEvent"}]}`,
			events: []ev{{"t", "AuditEvent", t0}}},
		{name: "azure mixed good and bad records",
			msg: `{"records":[
				{"time":"2024-09-05T10:11:12Z","tenantId":"a","category":"c"},
				42,
				{"time":"2024-09-05T10:11:12Z","tenantId":"b"},
				{"time":"2024-13-05T10:11:12Z","tenantId":"c","category":"c"},
				{"time":"2024-09-05T10:11:12Z","category":"c","resourceId":"/providers/none"},
				null,
				{"time":"2024-09-05T10:11:12Z","tenantId":"d","category":"c"}]}`,
			events: []ev{{"a", "c", t0}, {"d", "c", t0}},
			rejects: []want{
				{ReasonNotObject, "record 1: value is a number, want an object"},
				{ReasonMissingSource, "record 2: no source field among [category]"},
				{ReasonBadTime, `record 3: time field time "2024-13-05T10:11:12Z" is not a recognised timestamp`},
				{ReasonMissingTenant, "record 4: no tenant field among [tenantId] and no /tenants/"},
				{ReasonNotObject, "record 5: value is null, want an object"},
			}},
		{name: "azure empty", msg: `{"records":[]}`, rejects: []want{{ReasonEmptyEnvelope, "records array is empty"}}},
		{name: "azure wins when both envelopes",
			msg:    `{"Records":[{"recipientAccountId":"1","eventTime":"2024-09-05T10:11:12Z"}],"records":[{"time":1725531072,"tenantId":"t","category":"c"}]}`,
			events: []ev{{"t", "c", t0}}},

		// CloudTrail Records envelope.
		{name: "cloudtrail",
			msg: `{"Records":[
				{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","accountId":"111122223333"},"eventTime":"2024-09-05T10:11:12Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","recipientAccountId":"444455556666"},
				{"eventVersion":"1.08","userIdentity":{"type":"AWSService","accountId":"111122223333"},"eventTime":"2024-09-05T10:11:13Z","eventSource":"sts.amazonaws.com"}]}`,
			events: []ev{{"444455556666", "aws.cloudtrail", t0}, {"111122223333", "aws.cloudtrail", t0.Add(time.Second)}}},
		{name: "cloudtrail fixed source", cfg: FieldConfig{FixedSource: "ct-org"},
			msg:    `{"Records":[{"recipientAccountId":"1","eventTime":"2024-09-05T10:11:12Z","source":"ignored"}]}`,
			events: []ev{{"1", "ct-org", t0}}},
		{name: "cloudtrail user source path, then the constant", cfg: FieldConfig{Source: []string{"eventSource"}},
			msg: `{"Records":[
				{"recipientAccountId":"1","eventTime":"2024-09-05T10:11:12Z","eventSource":"s3.amazonaws.com"},
				{"recipientAccountId":"1","eventTime":"2024-09-05T10:11:12Z"}]}`,
			events: []ev{{"1", "s3.amazonaws.com", t0}, {"1", "aws.cloudtrail", t0}}},
		{name: "cloudtrail default source paths are not used",
			msg:    `{"Records":[{"recipientAccountId":"1","eventTime":"2024-09-05T10:11:12Z","source":"x","category":"y"}]}`,
			events: []ev{{"1", "aws.cloudtrail", t0}}},
		{name: "cloudtrail user tenant and time paths first", cfg: FieldConfig{Tenant: []string{"orgId"}, Time: []string{"ingestTime"}},
			msg: `{"Records":[
				{"orgId":"o-1","recipientAccountId":"1","eventTime":"2024-09-05T10:11:12Z","ingestTime":1725531073000},
				{"recipientAccountId":"1","eventTime":"2024-09-05T10:11:12Z"}]}`,
			events: []ev{{"o-1", "aws.cloudtrail", t0.Add(time.Second)}, {"1", "aws.cloudtrail", t0}}},
		{name: "cloudtrail missing tenant and time",
			msg: `{"Records":[{"userIdentity":{"type":"AWSService"},"eventTime":"2024-09-05T10:11:12Z"},{"recipientAccountId":"1","time":1725531072}]}`,
			rejects: []want{
				{ReasonMissingTenant, "record 0: no tenant field among [recipientAccountId userIdentity.accountId]"},
				{ReasonMissingTime, "record 1: no time field among [eventTime]"},
			}},
		{name: "cloudtrail record not an object", msg: `{"Records":["x",[]]}`,
			rejects: []want{{ReasonNotObject, "record 0: value is a string"}, {ReasonNotObject, "record 1: value is an array"}}},
		{name: "cloudtrail source longer than max name bytes", cfg: FieldConfig{MaxNameBytes: 4},
			msg:     `{"Records":[{"recipientAccountId":"1","eventTime":"2024-09-05T10:11:12Z"}]}`,
			rejects: []want{{ReasonBadSource, `record 0: source is 14 bytes, longer than 4: "aws.cloudtrail" (max_name_bytes)`}}},
		{name: "cloudtrail empty", msg: `{"Records":[]}`, rejects: []want{{ReasonEmptyEnvelope, "Records array is empty"}}},

		// Envelope detection.
		{name: "records after a Records array wins",
			msg: `{"Records":[{"recipientAccountId":"1","eventTime":"2024-09-05T10:11:12Z"},7,{}],"x":{"records":[]},` +
				`"records":[{"time":1725531072,"tenantId":"t","category":"c"}]}`,
			events: []ev{{"t", "c", t0}}},
		{name: "empty records after a Records array",
			msg:     `{"Records":[{"recipientAccountId":"1","eventTime":"2024-09-05T10:11:12Z"}],"records":[]}`,
			rejects: []want{{ReasonEmptyEnvelope, "records array is empty"}}},
		{name: "records that is no array after a Records array",
			msg: `{"Records":[{"recipientAccountId":"\u0031","eventTime":"2024-09-05T10:11:12Z"},{"eventTime":"2024-09-05T10:11:12Z"},` +
				`{"recipientAccountId":"2","eventTime":"2024-09-05T10:11:13Z"}],"records":{"n":1},"records":[]}`,
			events:  []ev{{"1", "aws.cloudtrail", t0}, {"2", "aws.cloudtrail", t0.Add(time.Second)}},
			rejects: []want{{ReasonMissingTenant, "record 1: no tenant field among [recipientAccountId userIdentity.accountId]"}}},
		{name: "null records, then a Records array", msg: `{"records":null,"Records":[{"recipientAccountId":"1","eventTime":"2024-09-05T10:11:12Z"}]}`,
			events: []ev{{"1", "aws.cloudtrail", t0}}},
		{name: "only the first Records counts",
			msg:    `{"Records":{},"Records":[{"recipientAccountId":"1","eventTime":"2024-09-05T10:11:12Z"}],"tenant":"t","source":"s","time":1725531072}`,
			events: []ev{{"t", "s", t0}}},
		{name: "escaped envelope key", msg: `{"r\u0065cords":[{"time":1725531072,"tenantId":"t","category":"c"}]}`,
			events: []ev{{"t", "c", t0}}},
		{name: "envelope key inside a record is no envelope",
			msg:    `{"x":{"records":[{"time":1725531072,"tenantId":"a","category":"c"}]},"tenant":"t","source":"s","time":1725531072}`,
			events: []ev{{"t", "s", t0}}},

		// Keys: duplicates, escapes.
		{name: "duplicate key: a first null hides a later value",
			msg:    `{"tenant":null,"tenant":"b","tenantId":"c","source":"s","time":1725531072}`,
			events: []ev{{"c", "s", t0}}},
		{name: "duplicate key: first null, nothing else",
			msg:     `{"tenant":null,"tenant":"b","source":"s","time":1725531072}`,
			rejects: []want{{ReasonMissingTenant, "no tenant field among"}}},
		{name: "duplicate key: the escaped first occurrence wins",
			msg:    `{"ten\u0061nt":"a","tenant":"b","source":"s","time":1725531072}`,
			events: []ev{{"a", "s", t0}}},
		{name: "duplicate key: the escaped first occurrence wins in a record",
			msg:    `{"records":[{"tenantI\u0064":"a","tenantId":"b","category":"c","time":1725531072}]}`,
			events: []ev{{"a", "c", t0}}},
		{name: "duplicate key: escaped null first",
			msg:    `{"\u0074enant":null,"tenant":"b","tenantId":"c","source":"s","time":1725531072}`,
			events: []ev{{"c", "s", t0}}},
		{name: "escaped keys in a nested path", cfg: FieldConfig{Tenant: []string{"org.id"}},
			msg:    `{"\u006frg":{"\"x":1,"i\u0064":"o"},"source":"s","time":1725531072}`,
			events: []ev{{"o", "s", t0}}},
		{name: "key with escaped quote and backslash", cfg: FieldConfig{Tenant: []string{`a"b\`}},
			msg:    `{"a\"b\\":"t","source":"s","time":1725531072}`,
			events: []ev{{"t", "s", t0}}},
		{name: "tenant and source both escaped", msg: `{"tenant":"t\u0031","source":"s\u0032","time":"2024-09-05T10:11:12\u005a"}`,
			events: []ev{{"t1", "s2", t0}}},
		{name: "escaped resourceId", msg: `{"records":[{"time":1725531072,"category":"c","resourceId":"\/subscriptions\/s\u0031\/x"}]}`,
			events: []ev{{"s1", "c", t0}}},

		// Nested and literal paths.
		{name: "nested path through null", cfg: FieldConfig{Tenant: []string{"org.id"}},
			msg:    `{"org":null,"org.id":"flat","source":"s","time":1725531072}`,
			events: []ev{{"flat", "s", t0}}},
		{name: "nested path through an array", cfg: FieldConfig{Tenant: []string{"org.id"}},
			msg:    `{"org":[{"id":"x"}],"org.id":"flat","source":"s","time":1725531072}`,
			events: []ev{{"flat", "s", t0}}},
		{name: "nested path through a number and a string", cfg: FieldConfig{Tenant: []string{"a.b.c", "x.y.z"}},
			msg:     `{"a":{"b":7},"x":{"y":"z"},"source":"s","time":1725531072}`,
			rejects: []want{{ReasonMissingTenant, "no tenant field among [a.b.c x.y.z]"}}},
		{name: "nested path where the key is missing", cfg: FieldConfig{Tenant: []string{"a.b.c"}},
			msg:    `{"a":{"b":{"d":1}},"a.b.c":"flat","source":"s","time":1725531072}`,
			events: []ev{{"flat", "s", t0}}},
		{name: "nested path: first occurrence of the middle key", cfg: FieldConfig{Tenant: []string{"a.b.c"}},
			msg:     `{"a":{"b":null,"b":{"c":"x"}},"a":{"b":{"c":"y"}},"source":"s","time":1725531072}`,
			rejects: []want{{ReasonMissingTenant, ""}}},
		{name: "deep nested path", cfg: FieldConfig{Tenant: []string{"a.b.c.d"}},
			msg:    `{"a":{"x":[1,{"c":2}],"b":{"c":{"e":{},"d":"deep"}}},"source":"s","time":1725531072}`,
			events: []ev{{"deep", "s", t0}}},
		{name: "nested value of a bad type", cfg: FieldConfig{Tenant: []string{"a.b"}, Time: []string{"t.u"}},
			msg:     `{"a":{"b":"x"},"source":"s","t":{"u":[1725531072]}}`,
			rejects: []want{{ReasonBadTime, "time field t.u is an array, want a string or a number"}}},

		// Skipping values.
		{name: "nested values are skipped, brackets in strings too",
			msg: `{"x":[[[{"a":"]}\"]}"}],{"tenant":"no"}]],"y":{"z":{"tenant":"no","q":"{["}},"s":"\\","e":"\\\"",` +
				`"n":[-1.5e+3,0,true,false,null,"",{},[]],"tenant":"t","source":"s","time":1725531072}`,
			events: []ev{{"t", "s", t0}}},
		{name: "values ending in escaped quotes and backslashes",
			msg:    `{"a\\":"\\","b":"x\"","tenant":"t\"q\\","source":"\\\"s","time":1725531072}`,
			events: []ev{{`t"q\`, `\"s`, t0}}},
		{name: "long strings skipped", msg: `{"x":"` + strings.Repeat(`abcdefg\"`, 20) + `","tenant":"` + strings.Repeat("t", 40) + `","source":"s","time":1725531072}`,
			events: []ev{{strings.Repeat("t", 40), "s", t0}}},
		{name: "whitespace everywhere", msg: " \t\r\n{ \t\r\n\"tenant\" \n: \t\"t\" \r,\n\"x\" : [ 1 , { \"a\" : null } , [ ] ] ,\"source\":\"s\"\n,\"time\"\n:\n1725531072\n}\n\t ",
			events: []ev{{"t", "s", t0}}},
		{name: "whitespace everywhere in an envelope",
			msg:    "\n{ \"records\" :\n[ { \"tenantId\" : \"t\" , \"category\" : \"c\" , \"time\" : 1725531072 } ,\n 42 , { } \r\n] \n}\n",
			events: []ev{{"t", "c", t0}},
			rejects: []want{
				{ReasonNotObject, "record 1: value is a number, want an object"},
				{ReasonMissingTenant, "record 2: no tenant field among [tenantId resourceId]"},
			}},
		{name: "numeric tenant at the end of an object", cfg: FieldConfig{Tenant: []string{"a.t"}},
			msg:    `{"source":"s","time":1725531072,"a":{"t":42}}`,
			events: []ev{{"42", "s", t0}}},
		{name: "numeric time at the end of a record", msg: `{"records":[{"tenantId":"t","category":"c","time":1725531072},{"tenantId":"t","category":"c","time":1725531073}]}`,
			events: []ev{{"t", "c", t0}, {"t", "c", t0.Add(time.Second)}}},

		// Surrogate escapes: a valid pair is one rune, anything else U+FFFD.
		{name: "lone high surrogate", msg: `{"tenant":"a\ud800","source":"s","time":1725531072}`,
			events: []ev{{"a\uFFFD", "s", t0}}},
		{name: "lone low surrogate", msg: `{"tenant":"\uDC00b","source":"s","time":1725531072}`,
			events: []ev{{"\uFFFDb", "s", t0}}},
		{name: "high surrogate before another escape", msg: `{"tenant":"\ud800\u0041\ud800\n","source":"s","time":1725531072}`,
			rejects: []want{{ReasonBadTenant, "tenant field tenant contains control character 0x0a: \"\uFFFDA\uFFFD\\n\""}}},
		{name: "two high surrogates", msg: `{"tenant":"\ud83d\ud83d\ude00","source":"s","time":1725531072}`,
			events: []ev{{"\uFFFD😀", "s", t0}}},
		{name: "surrogates in the wrong order", msg: `{"tenant":"\ude00\ud83d","source":"s","time":1725531072}`,
			events: []ev{{"\uFFFD\uFFFD", "s", t0}}},
		{name: "surrogate pair in a key", cfg: FieldConfig{Tenant: []string{"😀"}},
			msg:    `{"\ud83d\ude00":"t","source":"s","time":1725531072}`,
			events: []ev{{"t", "s", t0}}},
	}
}

func TestDecode(t *testing.T) {
	for _, tt := range decodeCases() {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(tt.cfg)
			require.NoError(t, err)
			r := decodeAll(d, []byte(tt.msg))
			require.Equal(t, len(r.events), r.nEvents, "returned event count")
			require.Equal(t, len(r.rejects), r.nRejects, "returned rejection count")
			require.GreaterOrEqual(t, r.nEvents+r.nRejects, 1)

			require.Len(t, r.events, len(tt.events), "events: %+v, rejects: %+v", r.events, r.rejects)
			for i, w := range tt.events {
				require.Equal(t, w.Tenant, r.events[i].Tenant, "event %d", i)
				require.Equal(t, w.Source, r.events[i].Source, "event %d", i)
				require.Truef(t, w.Time.Equal(r.events[i].Time), "event %d: want %v, got %v", i, w.Time, r.events[i].Time)
				require.Equal(t, time.UTC, r.events[i].Time.Location())
			}
			require.Len(t, r.rejects, len(tt.rejects), "rejects: %+v", r.rejects)
			for i, w := range tt.rejects {
				require.Equal(t, w.reason, r.rejects[i].Reason, "reject %d: %s", i, r.rejects[i].Detail)
				require.Contains(t, r.rejects[i].Detail, w.detail, "reject %d", i)
				require.LessOrEqual(t, len(r.rejects[i].Detail), maxDetail)
				require.True(t, utf8.ValidString(r.rejects[i].Detail))
			}

			// A reused decoder gives the same answer.
			again := decodeAll(d, []byte(tt.msg))
			require.Equal(t, r, again)
		})
	}
}

// The detail of a rejection quotes little of the input, however large.
func TestDecodeDetailIsBounded(t *testing.T) {
	big := strings.Repeat("é", 4000) // 8000 bytes
	d, err := New(FieldConfig{})
	require.NoError(t, err)
	for _, msg := range []string{
		`{"tenant":"` + big + `","source":"s","time":1}`,
		`{"tenant":"t","source":"s","time":"` + big + `"}`,
		`{"tenant":"t","source":"s","time":1725531072,"x":"` + big + `"` + big,
		`{"records":[{"time":1725531072,"category":"c","resourceId":"/p/` + big + `"}]}`,
		`{"x":` + strings.Repeat(`"`+big+`",`, 3) + `nope}`,
		`[` + big,
	} {
		r := decodeAll(d, []byte(msg))
		require.Len(t, r.rejects, 1)
		detail := r.rejects[0].Detail
		require.LessOrEqual(t, len(detail), maxDetail, detail)
		require.True(t, utf8.ValidString(detail))
		// At most ~200 bytes of input: no 200-byte run of the input appears.
		require.NotContains(t, detail, strings.Repeat("é", 100), detail)
	}
}

// A nil callback is allowed.
func TestDecodeNilCallbacks(t *testing.T) {
	d, err := New(FieldConfig{})
	require.NoError(t, err)
	n, m := d.Decode([]byte(`{"records":[{"time":1725531072,"tenantId":"t","category":"c"},{}]}`), nil, nil)
	require.Equal(t, 1, n)
	require.Equal(t, 1, m)
	n, m = d.Decode([]byte(`x`), nil, nil)
	require.Equal(t, 0, n)
	require.Equal(t, 1, m)
}

// Successful decoding allocates nothing once the parser has warmed up.
func TestDecodeNoAllocs(t *testing.T) {
	d, err := New(FieldConfig{})
	require.NoError(t, err)
	for name, msg := range benchMessages() {
		count := 0
		emit := func(e Event) { count++ }
		d.Decode(msg, emit, nil)
		allocs := testing.AllocsPerRun(50, func() { d.Decode(msg, emit, nil) })
		require.Zero(t, allocs, name)
		require.NotZero(t, count, name)
	}
}

func TestFieldConfigDefaults(t *testing.T) {
	c := FieldConfig{}.WithDefaults()
	require.Equal(t, FieldConfig{
		Format:          FormatAuto,
		Tenant:          []string{"tenant", "tenantId", "tenant_id", "TenantId"},
		Source:          []string{"source", "category", "log_type", "Type"},
		Time:            []string{"time", "@timestamp", "timestamp", "TimeGenerated"},
		MaxMessageBytes: 1 << 20,
		MaxNameBytes:    256,
	}, c)
	require.NoError(t, c.Validate())
	require.NoError(t, FieldConfig{}.Validate())

	// The defaults are copies.
	c.Tenant[0] = "changed"
	require.Equal(t, "tenant", FieldConfig{}.WithDefaults().Tenant[0])

	// Set values are kept.
	set := FieldConfig{Format: FormatJSON, Tenant: []string{"a"}, Source: []string{"b"}, Time: []string{"c"}, FixedSource: "f", MaxMessageBytes: 10, MaxNameBytes: 5}
	require.Equal(t, set, set.WithDefaults())
}

func TestFieldConfigValidate(t *testing.T) {
	tests := []struct {
		cfg FieldConfig
		err string
	}{
		{FieldConfig{Format: "xml"}, `ingest: fields: unknown format "xml" (want one of [auto json ecs ocsf gcp hec`},
		{FieldConfig{Format: "JSON"}, `unknown format "JSON"`},
		{FieldConfig{Tenant: []string{"a", ""}}, "ingest: fields: tenant path 1 is empty"},
		{FieldConfig{Source: []string{"a..b"}}, `ingest: fields: source path "a..b" has an empty element`},
		{FieldConfig{Time: []string{".a"}}, `ingest: fields: time path ".a" has an empty element`},
		{FieldConfig{Time: []string{"a."}}, `time path "a." has an empty element`},
		{FieldConfig{MaxMessageBytes: -1}, "ingest: fields: max_message_bytes is negative (-1)"},
		{FieldConfig{MaxNameBytes: -5}, "ingest: fields: max_name_bytes is negative (-5)"},
		{FieldConfig{FixedSource: "a\nb"}, "ingest: fields: fixed_source contains control character 0x0a"},
		{FieldConfig{FixedSource: strings.Repeat("s", 257)}, "ingest: fields: fixed_source is 257 bytes, longer than 256"},
		{FieldConfig{FixedSource: "abcd", MaxNameBytes: 3}, "fixed_source is 4 bytes, longer than 3"},
		{FieldConfig{FixedSource: "\xff"}, "fixed_source is not valid UTF-8"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		require.ErrorContains(t, err, tt.err)
		_, err = New(tt.cfg)
		require.ErrorContains(t, err, tt.err)
	}
	for _, ok := range []FieldConfig{
		{Format: FormatAuto},
		{Format: FormatJSON, Tenant: []string{"a.b.c", "@x", "with space"}, FixedSource: "k8s"},
		{FixedSource: strings.Repeat("s", 256)},
	} {
		require.NoError(t, ok.Validate())
		_, err := New(ok)
		require.NoError(t, err)
	}
}

// Paths equal to the defaults are not "user-configured": envelopes use natives only.
func TestExplicitDefaultPathsAreDefaults(t *testing.T) {
	d, err := New(FieldConfig{Tenant: []string{"tenant", "tenantId", "tenant_id", "TenantId"}})
	require.NoError(t, err)
	r := decodeAll(d, []byte(`{"records":[{"tenant":"t","category":"c","time":1725531072}]}`))
	require.Equal(t, []rej{{ReasonMissingTenant, "record 0: no tenant field among [tenantId resourceId]"}}, r.rejects)
}

func benchPlain() []byte {
	return []byte(`{"@timestamp":"2024-09-05T10:11:12.123Z","log_type":"access","host":{"name":"web-01","ip":"10.0.3.17"},` +
		`"http":{"method":"GET","path":"/api/v1/orders/98123","status":200,"bytes":5123,"duration_ms":12.7},` +
		`"user_agent":"Mozilla/5.0 (X11; Linux x86_64)","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736",` +
		`"tenant":"acme-prod","source":"nginx","message":"GET /api/v1/orders/98123 200"}`)
}

func benchAzure(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"records":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		tenant := ""
		if i%2 == 0 {
			tenant = `"tenantId":"72f988bf-86f1-41af-91ab-2d7cd011db47",`
		}
		fmt.Fprintf(&b, `{"time":"2024-09-05T10:11:%02d.1234567Z",`+
			`"resourceId":"/SUBSCRIPTIONS/0B1F6471-1BF0-4DDA-AEC3-CB9272F09590/RESOURCEGROUPS/RG-PROD/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV-PROD-01",`+
			`"operationName":"SecretGet","operationVersion":"7.4","category":"AuditEvent","resultType":"Success",%s`+
			`"durationMs":"8","callerIpAddress":"52.174.12.9","correlationId":"a8e3b7c2-3f1e-4c9a-9d3b-5e2f1a7c8b%02d",`+
			`"properties":{"id":"https://kv-prod-01.vault.azure.net/secrets/db","httpStatusCode":200}}`, i%60, tenant, i%100)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func benchCloudTrail(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"Records":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:session-%d",`+
			`"arn":"arn:aws:sts::111122223333:assumed-role/app/session","accountId":"111122223333"},`+
			`"eventTime":"2024-09-05T10:11:%02dZ","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"eu-west-1",`+
			`"sourceIPAddress":"203.0.113.7","requestParameters":{"bucketName":"logs","key":"a/b/%d.gz"},`+
			`"eventID":"5c4f8e2a-1b3d-4e6f-9a8b-%012d","readOnly":true,"recipientAccountId":"111122223333"}`, i, i%60, i, i)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func benchMessages() map[string][]byte {
	return map[string][]byte{
		"plain":         benchPlain(),
		"azure_10":      benchAzure(10),
		"cloudtrail_10": benchCloudTrail(10),
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, bc := range []struct {
		name   string
		msg    []byte
		events int
	}{
		{"plain", benchPlain(), 1},
		{"azure_records_10", benchAzure(10), 10},
		{"cloudtrail_Records_10", benchCloudTrail(10), 10},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d, err := New(FieldConfig{})
			require.NoError(b, err)
			count := 0
			emit := func(Event) { count++ }
			reject := func(r Reason, detail string) { b.Fatalf("rejected: %s: %s", r, detail) }
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.msg)))
			for b.Loop() {
				d.Decode(bc.msg, emit, reject)
			}
			if count%bc.events != 0 {
				b.Fatalf("%d events, want a multiple of %d", count, bc.events)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(count), "ns/event")
		})
	}
}

// fuzzConfigs are the configurations FuzzDecode runs every input through.
var fuzzConfigs = []FieldConfig{
	{},
	{Format: FormatJSON, Tenant: []string{"a.b", "t"}, Time: []string{"ts", "time"}, FixedSource: "fixed"},
	{Tenant: []string{"org.id"}, Source: []string{"kind"}, MaxMessageBytes: 256, MaxNameBytes: 4},
	{Tenant: []string{"a.b.c", "records"}, Source: []string{"x.y"}, Time: []string{"t.u", "Records"}},
}

// fuzzDecoders returns a decoder and a reference decoder per fuzzConfigs.
func fuzzDecoders(t testing.TB) ([]*Decoder, []*refDecoder) {
	var ds []*Decoder
	var refs []*refDecoder
	for _, cfg := range fuzzConfigs {
		d, err := New(cfg)
		require.NoError(t, err)
		ref, err := newRefDecoder(cfg)
		require.NoError(t, err)
		ds, refs = append(ds, d), append(refs, ref)
	}
	return ds, refs
}

func refDecodeAll(d *refDecoder, msg []byte) result {
	var r result
	r.nEvents, r.nRejects = d.Decode(msg,
		func(e Event) { r.events = append(r.events, ev{string(e.Tenant), string(e.Source), e.Time}) },
		func(reason Reason, detail string) { r.rejects = append(r.rejects, rej{reason, detail}) })
	return r
}

// surrogateEscape matches a \u escape of a UTF-16 surrogate, which Decoder
// decodes as encoding/json does and the reference as fastjson does.
var surrogateEscape = regexp.MustCompile(`(?i)\\u[d][89a-f]`)

// checkSameAsReference fails if d and ref decode msg differently (unless
// msg has a surrogate escape).
func checkSameAsReference(t testing.TB, d *Decoder, ref *refDecoder, msg []byte) {
	t.Helper()
	if surrogateEscape.Match(msg) || beyondReference(d, msg) {
		return
	}
	got, want := decodeAll(d, msg), refDecodeAll(ref, msg)
	if !equalResults(got, want) {
		t.Fatalf("decoding %q\ngot       %+v\nreference %+v", msg, got, want)
	}
}

// beyondReference reports whether d reads msg in a format the reference
// decoder does not know (those added after it: syslog and CEF lines, the
// single-object envelopes, OTLP); envelopes_test.go tests those.
func beyondReference(d *Decoder, msg []byte) bool {
	if len(msg) > d.maxMessage {
		return false
	}
	if d.format == FormatAuto && lineOf(msg) != lineNone {
		return true
	}
	n := &d.notes
	n.reset()
	if _, why := walk(msg, n); why != "" || msg[skipWS(msg, 0)] != '{' || n.azure.found || n.cloudTrail.found {
		return false
	}
	if v := n.top[d.otlpSpec.key].start; d.format == FormatAuto && v != 0 && msg[v] == '[' {
		return true
	}
	return d.objectSpec(msg) != &d.plain
}

var messageReasons = map[Reason]bool{
	ReasonOversized: true, ReasonInvalidUTF8: true, ReasonInvalidJSON: true, ReasonEmptyEnvelope: true,
	ReasonMissingEnvelope: true, ReasonBadSyslog: true, ReasonBadCEF: true,
}

var recordReasons = map[Reason]bool{
	ReasonNotObject: true, ReasonMissingTenant: true, ReasonMissingSource: true, ReasonMissingTime: true,
	ReasonBadTime: true, ReasonBadTenant: true, ReasonBadSource: true,
}

// jsonDepth returns the maximum nesting of arrays and objects in b (outside strings).
func jsonDepth(b []byte) int {
	depth, deepest, inString, escaped := 0, 0, false, false
	for _, c := range b {
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && (c == '[' || c == '{'):
			depth++
			deepest = max(deepest, depth)
		case !inString && (c == ']' || c == '}'):
			depth--
		}
	}
	return deepest
}

func FuzzDecode(f *testing.F) {
	// Seeds live in testdata/fuzz/FuzzDecode.
	decoders, refs := fuzzDecoders(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for di, d := range decoders {
			checkSameAsReference(t, d, refs[di], data)
			r := decodeAll(d, data)
			if r.nEvents != len(r.events) || r.nRejects != len(r.rejects) {
				t.Fatalf("decoder %d: returned (%d, %d), callbacks (%d, %d)", di, r.nEvents, r.nRejects, len(r.events), len(r.rejects))
			}
			if r.nEvents+r.nRejects < 1 {
				t.Fatalf("decoder %d: %q produced nothing", di, data)
			}
			for _, e := range r.events {
				for _, name := range []string{e.Tenant, e.Source} {
					if name == "" || len(name) > d.maxName || !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
						t.Fatalf("decoder %d: bad name %q from %q", di, name, data)
					}
				}
				if y := e.Time.Year(); y < 1971 || y > 2200 || e.Time.Location() != time.UTC {
					t.Fatalf("decoder %d: bad time %v from %q", di, e.Time, data)
				}
				// Without escapes, a tenant is text of the input.
				if !bytes.ContainsRune(data, '\\') && !bytes.Contains(data, []byte(e.Tenant)) {
					t.Fatalf("decoder %d: tenant %q is not in %q", di, e.Tenant, data)
				}
			}
			for _, rj := range r.rejects {
				if !messageReasons[rj.Reason] && !recordReasons[rj.Reason] {
					t.Fatalf("decoder %d: unknown reason %q", di, rj.Reason)
				}
				if messageReasons[rj.Reason] && (r.nEvents != 0 || r.nRejects != 1) {
					t.Fatalf("decoder %d: message-level %s with other results: %+v", di, rj.Reason, r)
				}
				if len(rj.Detail) > maxDetail || !utf8.ValidString(rj.Detail) || rj.Detail == "" {
					t.Fatalf("decoder %d: bad detail %q", di, rj.Detail)
				}
			}
			// JSON validity agrees with encoding/json (within the depth limit).
			if len(data) <= d.maxMessage && utf8.Valid(data) && jsonDepth(data) < 290 && (d.format != FormatAuto || lineOf(data) == lineNone) {
				invalid := len(r.rejects) == 1 && r.rejects[0].Reason == ReasonInvalidJSON
				if json.Valid(data) == invalid {
					t.Fatalf("decoder %d: encoding/json says valid=%v, decoder says %+v for %q", di, json.Valid(data), r.rejects, data)
				}
			}
			// Invalid UTF-8 anywhere is that, whatever else is wrong.
			if len(data) <= d.maxMessage && !utf8.Valid(data) && (r.nRejects != 1 || r.rejects[0].Reason != ReasonInvalidUTF8) {
				t.Fatalf("decoder %d: invalid UTF-8 %q gave %+v", di, data, r)
			}
			// Decoding is deterministic across reuse and fresh decoders.
			if again := decodeAll(d, data); !equalResults(r, again) {
				t.Fatalf("decoder %d: second decode differs: %+v vs %+v", di, r, again)
			}
		}
	})
}

func equalResults(a, b result) bool {
	if a.nEvents != b.nEvents || a.nRejects != b.nRejects || len(a.events) != len(b.events) || len(a.rejects) != len(b.rejects) {
		return false
	}
	for i := range a.events {
		if a.events[i].Tenant != b.events[i].Tenant || a.events[i].Source != b.events[i].Source || !a.events[i].Time.Equal(b.events[i].Time) {
			return false
		}
	}
	for i := range a.rejects {
		if a.rejects[i] != b.rejects[i] {
			return false
		}
	}
	return true
}
