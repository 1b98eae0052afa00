package decode

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// resourceTenant returns the path segment after the leftmost /tenants/ or
// /subscriptions/ (ASCII case-insensitive) of an Azure resource ID.
func resourceTenant(rid []byte, _ *[]byte) ([]byte, bool) {
	for i := 0; i < len(rid); i++ {
		if rid[i] != '/' {
			continue
		}
		rest := rid[i+1:]
		var n int
		switch {
		case hasPrefixFold(rest, "tenants/"):
			n = len("tenants/")
		case hasPrefixFold(rest, "subscriptions/"):
			n = len("subscriptions/")
		default:
			continue
		}
		seg := rest[n:]
		if j := bytes.IndexByte(seg, '/'); j >= 0 {
			seg = seg[:j]
		}
		return seg, true
	}
	return nil, false
}

// hasPrefixFold reports whether b starts with the lower-case ASCII prefix,
// ignoring ASCII case.
func hasPrefixFold(b []byte, prefix string) bool {
	if len(b) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// checkName returns why b is not an acceptable tenant or source, or "".
func checkName(b []byte, maxName int) string {
	if len(b) != 0 && len(b) <= maxName && printableASCII(b) {
		return ""
	}
	if len(b) == 0 {
		return "is empty"
	}
	if len(b) > maxName {
		return "is " + strconv.Itoa(len(b)) + " bytes, longer than " + strconv.Itoa(maxName) + ": " + excerpt(b)
	}
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return fmt.Sprintf("contains control character 0x%02x: %s", c, excerpt(b))
		}
	}
	if !utf8.Valid(b) {
		return "is not valid UTF-8: " + excerpt(b)
	}
	// C1 controls (U+0080–U+009F, UTF-8 0xC2 0x80–0x9F): terminal escapes
	// (CSI) in a name would reach operators' terminals and logs.
	for i := 0; i+1 < len(b); i++ {
		if b[i] == 0xc2 && b[i+1] >= 0x80 && b[i+1] <= 0x9f {
			return fmt.Sprintf("contains control character U+%04X: %s", rune(b[i+1]), excerpt(b))
		}
	}
	return ""
}

// printableASCII reports whether b holds only ASCII bytes from 0x20 to
// 0x7e, the usual tenant or source, checking eight bytes at a time.
func printableASCII(b []byte) bool {
	for len(b) >= 8 {
		w := binary.LittleEndian.Uint64(b)
		if w&highs|hasLess(w, 0x20)|hasZero(w^(ones*0x7f)) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// isInteger reports whether the JSON number text b is a non-negative
// integer literal.
func isInteger(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// excerpt quotes at most maxExcerpt bytes of b (cut on a rune
// boundary), marking a cut with "...".
func excerpt(b []byte) string {
	if len(b) <= maxExcerpt {
		return strconv.Quote(string(b))
	}
	cut := maxExcerpt
	for cut > maxExcerpt-utf8.UTFMax && cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return strconv.Quote(string(b[:cut])) + "..."
}

// clip cuts s to at most n bytes on a rune boundary and makes it valid UTF-8.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > n {
		cut := n
		for cut > n-utf8.UTFMax && cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

func recordPrefix(i int) string {
	return "record " + strconv.Itoa(i) + ": "
}

func rejectClipped(reject func(Reason, string), reason Reason, detail string) {
	if reject != nil {
		reject(reason, clip(detail, maxDetail))
	}
}

// typeName names the type of the JSON value that starts with c.
func typeName(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// invalidUTF8At returns the offset of the first byte that is not part of
// a valid UTF-8 sequence.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}

// derivedName is a tenant or source read out of another field's string when
// no path gave one: the Azure resourceId's subscription, the log id of a
// Google Cloud logName.
type derivedName struct {
	field string // the field's key, for details
	key   int    // its index in the record's keys
	want  string // what it must hold, for details
	fn    func(v []byte, scratch *[]byte) ([]byte, bool)
}

// gcpLogID returns the log id of a Google Cloud Logging logName
// (projects/P/logs/ID, also organizations/, folders/, billingAccounts/),
// URL-decoded as Cloud Logging escapes it ("cloudaudit.googleapis.com%2Factivity"
// is cloudaudit.googleapis.com/activity), into scratch if it has escapes.
// name may itself live in scratch (a JSON string with escapes): decoding in
// place is safe, as every byte written consumes at least one read further on.
func gcpLogID(name []byte, scratch *[]byte) ([]byte, bool) {
	i := bytes.Index(name, []byte("/logs/"))
	if i < 0 || i+len("/logs/") == len(name) {
		return nil, false
	}
	id := name[i+len("/logs/"):]
	if bytes.IndexByte(id, '%') < 0 {
		return id, true
	}
	out := (*scratch)[:0]
	for j := 0; j < len(id); j++ {
		c := id[j]
		if c == '%' {
			hi, ok1 := hexVal(at(id, j+1))
			lo, ok2 := hexVal(at(id, j+2))
			if !ok1 || !ok2 {
				return nil, false
			}
			c = byte(hi<<4 | lo)
			j += 2
		}
		out = append(out, c)
	}
	*scratch = out
	return out, true
}

// at is b[i], or 0 past its end.
func at(b []byte, i int) byte {
	if i < len(b) {
		return b[i]
	}
	return 0
}
