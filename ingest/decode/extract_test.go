package decode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// Decoder decodes as the reference (fastjson) decoder does: every TestDecode
// case, under its own configuration and those of FuzzDecode, and every seed
// of FuzzDecode.
func TestDecodeMatchesReference(t *testing.T) {
	decoders, refs := fuzzDecoders(t)
	check := func(t *testing.T, msg []byte) {
		for i, d := range decoders {
			checkSameAsReference(t, d, refs[i], msg)
		}
	}
	for _, tt := range decodeCases() {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(tt.cfg)
			require.NoError(t, err)
			ref, err := newRefDecoder(tt.cfg)
			require.NoError(t, err)
			checkSameAsReference(t, d, ref, []byte(tt.msg))
			check(t, []byte(tt.msg))
		})
	}
	seeds, err := filepath.Glob("testdata/fuzz/FuzzDecode/*")
	require.NoError(t, err)
	require.NotEmpty(t, seeds)
	for _, name := range seeds {
		t.Run(filepath.Base(name), func(t *testing.T) {
			check(t, readFuzzSeed(t, name))
		})
	}
	for name, msg := range benchMessages() {
		t.Run(name, func(t *testing.T) { check(t, msg) })
	}
}

// readFuzzSeed returns the input of a one-argument []byte seed file.
func readFuzzSeed(t testing.TB, name string) []byte {
	t.Helper()
	text, err := os.ReadFile(name)
	require.NoError(t, err)
	header, body, ok := strings.Cut(string(text), "\n")
	require.True(t, ok && header == "go test fuzz v1", "%s: not a seed file", name)
	body = strings.TrimSpace(body)
	require.True(t, strings.HasPrefix(body, "[]byte(") && strings.HasSuffix(body, ")"), "%s: not one []byte", name)
	s, err := strconv.Unquote(body[len("[]byte(") : len(body)-1])
	require.NoError(t, err, name)
	return []byte(s)
}

// unescape decodes strings as encoding/json does, surrogates included.
func TestUnescape(t *testing.T) {
	for _, lit := range []string{
		`""`, `"plain"`, `"é日本"`, `"\"\\\/\b\f\n\r\t"`, `"a\u0041\u00e9\u65e5"`, `"\u0000"`,
		`"\ud83d\ude00"`, `"\uD83D\uDE00x"`, `"\ud800"`, `"\udc00"`, `"\ud800x"`, `"\ud800\u0041"`,
		`"\ud800\ud800\udc00"`, `"\ude00\ud83d"`, `"\ud800\n"`, `"\ud800\\udc00"`, `"x\\"`, `"\\\""`,
		`"\uFFFD\uffff\u10000"`,
	} {
		var want string
		require.NoError(t, json.Unmarshal([]byte(lit), &want), lit)
		raw := []byte(lit[1 : len(lit)-1])
		require.Equal(t, want, string(unescape(nil, raw)), lit)
		require.Equal(t, "pre"+want, string(unescape([]byte("pre"), raw)), lit)
		end, escaped := stringEnd([]byte(lit), 1)
		require.Equal(t, len(lit)-1, end, lit)
		require.Equal(t, strings.Contains(lit, `\`), escaped, lit)
	}
}

// skipValue finds the end of every kind of value, wherever it ends.
func TestSkipValue(t *testing.T) {
	for _, v := range []string{
		`0`, `-1.5e+10`, `12345678901234567890`, `true`, `false`, `null`, `""`, `"a"`,
		`"` + strings.Repeat("x", 30) + `\"` + strings.Repeat("y", 30) + `"`, `"\\"`, `"\\\\\"\\"`,
		`{}`, `[]`, `{"a":[1,{"b":"]}"},[]],"c":{}}`, `[[[[[[[[[[]]]]]]]]]]`, `[ { } , [ ] , "[" , "{" ]`,
		`{"` + strings.Repeat("k", 20) + `":"` + strings.Repeat("]", 20) + `"}`,
	} {
		for _, after := range []string{"", ",", " ]", "}"} {
			b := []byte(v + after)
			require.Equal(t, len(v), skipValue(b, 0), "%s", b)
		}
	}
}

// printableASCII agrees with a byte by byte check, whatever the length
// and wherever the odd byte is.
func TestPrintableASCII(t *testing.T) {
	for n := 1; n <= 17; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := bytes.Repeat([]byte{'a'}, n)
				b[pos] = byte(c)
				want := c >= 0x20 && c < 0x7f
				require.Equal(t, want, printableASCII(b), "%q", b)
			}
		}
	}
}

func BenchmarkValidJSON(b *testing.B) {
	for name, msg := range benchMessages() {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				validJSON(msg)
			}
		})
	}
}

// Decoder decodes as the reference does on random JSON built from the keys
// and values the configurations look at: duplicates, escaped keys, nesting,
// envelopes in any order, whitespace.
func TestDecodeRandomMatchesReference(t *testing.T) {
	decoders, refs := fuzzDecoders(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		msg := randomJSON(rng)
		for i, d := range decoders {
			checkSameAsReference(t, d, refs[i], msg)
		}
	}
}

var (
	randomKeys = []string{
		"tenant", "tenantId", "source", "category", "time", "@timestamp", "resourceId",
		"recipientAccountId", "userIdentity", "accountId", "eventTime", "a", "b", "c", "org", "id",
		"kind", "ts", "t", "u", "x",
		"tenant_id", "TenantId", "log_type", "Type", "timestamp", "TimeGenerated", "records", "Records",
		"a.b", "a.b.c", "org.id", "t.u", "y", "x.y", "",
	}
	// randomFieldKeys are the keys at the start of randomKeys that a field is read from.
	randomFieldKeys = randomKeys[:21]
	randomStrings   = []string{
		"acme", "", "t", "2024-09-05T10:11:12Z", "2024-09-05T10:11:12.1234567Z", "1725531072", "yesterday",
		"/subscriptions/abc/x", "/TENANTS/T1/y", "/providers/none", "/subscriptions//x", "a\"b", `\`, "x\x00",
		"\t", "é日本", "aws.cloudtrail", "ten", "]}", "{[", strings.Repeat("long", 20),
	}
	randomNumbers = []string{"0", "-1", "42", "1725531072", "1725531072123", "1.5", "1e3", "-0", "1725531072.5", "1E400"}
)

// randomJSON returns a random JSON object, often an envelope.
func randomJSON(rng *rand.Rand) []byte {
	var b []byte
	ws := func() {
		if rng.IntN(4) == 0 {
			b = append(b, " \t\n\r"[rng.IntN(4)])
		}
	}
	var (
		value  func(depth int)
		member func(key string, depth int)
	)
	str := func(s string) {
		b = append(b, '"')
		for _, r := range s {
			switch {
			case r == '"' || r == '\\':
				b = append(b, '\\', byte(r))
			case r < 0x20 || r < 0x10000 && rng.IntN(12) == 0:
				b = fmt.Appendf(b, `\u%04x`, r)
			default:
				b = utf8.AppendRune(b, r)
			}
		}
		b = append(b, '"')
	}
	var object func(depth int, keys []string)
	object = func(depth int, keys []string) {
		b = append(b, '{')
		ws()
		for i := range rng.IntN(9) {
			if i > 0 {
				b = append(b, ',')
				ws()
			}
			key := keys[rng.IntN(len(keys))]
			if rng.IntN(2) == 0 {
				key = keys[rng.IntN(len(randomFieldKeys))]
			}
			if depth == 0 && rng.IntN(3) == 0 {
				key = []string{"records", "Records"}[rng.IntN(2)]
			}
			str(key)
			ws()
			b = append(b, ':')
			ws()
			if depth == 0 && (key == "records" || key == "Records") && rng.IntN(4) != 0 {
				// An envelope: an array of mostly records.
				b = append(b, '[')
				for i := range rng.IntN(5) {
					if i > 0 {
						b = append(b, ',')
					}
					ws()
					if rng.IntN(5) == 0 {
						value(depth + 2)
					} else {
						object(depth+2, keys)
					}
					ws()
				}
				b = append(b, ']')
			} else {
				member(key, depth+1)
			}
			ws()
		}
		b = append(b, '}')
	}
	// member writes a value for key, mostly one that the key's field accepts.
	member = func(key string, depth int) {
		if rng.IntN(4) == 0 {
			value(depth)
			return
		}
		switch key {
		case "time", "@timestamp", "timestamp", "TimeGenerated", "eventTime", "ts", "u", "t.u":
			str([]string{"2024-09-05T10:11:12Z", "2024-09-05T10:11:12.1234567Z", "1725531072"}[rng.IntN(3)])
		case "resourceId":
			str([]string{"/subscriptions/abc/x", "/TENANTS/T1/y", "/a/Subscriptions/s"}[rng.IntN(3)])
		case "a", "b", "org", "t", "x", "userIdentity":
			object(depth, randomKeys)
		default:
			if rng.IntN(3) == 0 {
				b = append(b, "42"...)
			} else {
				str([]string{"acme", "t", "aws.cloudtrail", "é日本"}[rng.IntN(4)])
			}
		}
	}
	value = func(depth int) {
		switch n := rng.IntN(10); {
		case n < 4:
			str(randomStrings[rng.IntN(len(randomStrings))])
		case n < 6:
			b = append(b, randomNumbers[rng.IntN(len(randomNumbers))]...)
		case n < 7:
			b = append(b, []string{"true", "false", "null"}[rng.IntN(3)]...)
		case n < 9 && depth < 5:
			object(depth, randomKeys)
		case depth < 5:
			b = append(b, '[')
			for i := range rng.IntN(4) {
				if i > 0 {
					b = append(b, ',')
				}
				ws()
				value(depth + 1)
				ws()
			}
			b = append(b, ']')
		default:
			b = append(b, "null"...)
		}
	}
	ws()
	object(0, randomKeys)
	ws()
	return b
}

// The notes of a large envelope are dropped once it is decoded: a decoder
// per partition does not hold on to what one large message needed.
func TestLargeEnvelopeNotesAreDropped(t *testing.T) {
	d, err := New(FieldConfig{})
	require.NoError(t, err)
	big := []byte(`{"records":[` + strings.Repeat(`{},`, 100_000) + `{}]}`)
	events, rejected := d.Decode(big, nil, nil)
	require.Zero(t, events)
	require.Equal(t, 100_001, rejected)
	require.Greater(t, cap(d.notes.azure.vals), maxKeptNotes)
	events, _ = d.Decode(benchPlain(), nil, nil)
	require.Equal(t, 1, events)
	require.LessOrEqual(t, cap(d.notes.azure.vals), maxKeptNotes)
	require.LessOrEqual(t, cap(d.notes.azure.elems), maxKeptNotes)
}
