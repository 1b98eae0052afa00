package decode

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// walk checks that b is exactly one RFC 8259 JSON value (surrounded by
// optional whitespace), nested at most maxDepth deep, in valid UTF-8 (a
// non-ASCII byte outside a string is not JSON). It returns "" or why not and
// the byte offset where it failed. It is iterative, allocation-free (once
// n's buffers have grown) and a single pass.
//
// With n, the same pass notes what the extractor needs (see notes): where
// the values of the top-level object's keys start and, for an envelope
// array, where each element and each element's keys' values start. What it
// notes is only meaningful when b is valid.
func walk(b []byte, n *notes) (pos int, why string) {
	// open has a bit per nesting level, set when that container is an object.
	var open [maxDepth / 64]uint64
	depth := 0
	obj := false // the innermost open container is an object

	i := skipWS(b, 0)
	for {
		// A value starts at i.
		if i >= len(b) {
			return i, "unexpected end of input"
		}
		if depth == 2 && n != nil && n.cur != nil {
			n.cur.element(i)
		}
		switch c := b[i]; {
		case c == '"':
			if i, why = scanString(b, i); why != "" {
				return i, why
			}
		case c == '{' || c == '[':
			if depth == maxDepth {
				return i, "nesting deeper than " + strconv.Itoa(maxDepth) + " levels"
			}
			obj = c == '{'
			if obj {
				open[depth/64] |= 1 << (depth % 64)
			} else {
				open[depth/64] &^= 1 << (depth % 64)
			}
			depth++
			i = skipWS(b, i+1)
			if i < len(b) && b[i] == c+2 { // '{'+2 is '}', '['+2 is ']'
				i++
				depth--
				obj = depth > 0 && open[(depth-1)/64]&(1<<((depth-1)%64)) != 0
				break
			}
			if obj {
				if i, why = scanKey(b, i, n, depth); why != "" {
					return i, why
				}
			}
			continue
		case c == '-' || c >= '0' && c <= '9':
			if i, why = scanNumber(b, i); why != "" {
				return i, why
			}
		case c == 't':
			if i, why = scanLiteral(b, i, "true"); why != "" {
				return i, why
			}
		case c == 'f':
			if i, why = scanLiteral(b, i, "false"); why != "" {
				return i, why
			}
		case c == 'n':
			if i, why = scanLiteral(b, i, "null"); why != "" {
				return i, why
			}
		default:
			return i, "unexpected " + charAt(b, i)
		}

		// A value ended before i: close containers until a ',' asks for the next value.
		for {
			if i < len(b) && b[i] <= ' ' {
				i = skipWS(b, i)
			}
			if depth == 0 {
				if i != len(b) {
					return i, "unexpected " + charAt(b, i) + " after the top-level value"
				}
				return 0, ""
			}
			if i >= len(b) {
				return i, "unexpected end of input"
			}
			c := b[i]
			if c == ',' {
				i = skipWS(b, i+1)
				if obj {
					if i, why = scanKey(b, i, n, depth); why != "" {
						return i, why
					}
				}
				break
			}
			if obj && c != '}' {
				return i, "unexpected " + charAt(b, i) + ", want ',' or '}'"
			}
			if !obj && c != ']' {
				return i, "unexpected " + charAt(b, i) + ", want ',' or ']'"
			}
			i++
			depth--
			obj = depth > 0 && open[(depth-1)/64]&(1<<((depth-1)%64)) != 0
		}
	}
}

// validJSON is walk without notes.
func validJSON(b []byte) (pos int, why string) { return walk(b, nil) }

// scanKey checks an object key and its colon at b[i:] and returns the
// index where the value starts. The key is noted in n (if not nil) when
// its object is at depth 1 (the top level) or an envelope's element (3).
func scanKey(b []byte, i int, n *notes, depth int) (int, string) {
	if i >= len(b) {
		return i, "unexpected end of input"
	}
	if b[i] != '"' {
		return i, "unexpected " + charAt(b, i) + ", want an object key"
	}
	start := i
	i, why := scanString(b, i)
	if why != "" {
		return i, why
	}
	end := i
	i = skipWS(b, i)
	if i >= len(b) {
		return i, "unexpected end of input"
	}
	if b[i] != ':' {
		return i, "unexpected " + charAt(b, i) + ", want ':'"
	}
	v := skipWS(b, i+1)
	if n != nil && (depth == 1 || depth == 3 && n.cur != nil) {
		n.member(b, b[start+1:end-1], v, depth)
	}
	return v, ""
}

func skipWS(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString marks the bytes a JSON string holds as themselves: ASCII
// but the quote, the backslash and control characters (non-ASCII bytes are
// checked as UTF-8).
var plainString = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString checks the string starting with the quote at b[i] and
// returns the index after its closing quote.
func scanString(b []byte, i int) (int, string) {
	i++
	for {
		// Eight bytes at a time while none is a quote, a backslash or a
		// control character (the usual case), then byte by byte.
		for i+8 <= len(b) {
			w := binary.LittleEndian.Uint64(b[i:])
			if w&highs|hasLess(w, 0x20)|hasZero(w^(ones*'"'))|hasZero(w^(ones*'\\')) != 0 {
				break
			}
			i += 8
		}
		for i < len(b) && plainString[b[i]] {
			i++
		}
		if i >= len(b) {
			return i, "unterminated string"
		}
		switch c := b[i]; {
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size <= 1 {
				return i, "invalid UTF-8 in string"
			}
			i += size
		case c == '"':
			return i + 1, ""
		case c == '\\':
			if i+1 >= len(b) {
				return i + 1, "unterminated string"
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := i + 2; k < i+6; k++ {
					if k >= len(b) {
						return k, "unterminated string"
					}
					if _, ok := hexVal(b[k]); !ok {
						return i, "invalid escape " + excerpt(b[i:min(i+6, len(b))]) + " in string"
					}
				}
				i += 6
			default:
				return i, "invalid escape " + excerpt(b[i:i+2]) + " in string"
			}
		default:
			return i, fmt.Sprintf("control character 0x%02x in string", c)
		}
	}
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// hasZero reports (as non-zero) whether a byte of w is zero.
func hasZero(w uint64) uint64 { return (w - ones) & ^w & highs }

// hasLess reports (as non-zero) whether a byte of w is below n (n ≤ 128).
func hasLess(w uint64, n uint64) uint64 { return (w - ones*n) & ^w & highs }

// scanNumber checks the number starting at b[i] (a '-' or a digit) and
// returns the index after it.
func scanNumber(b []byte, i int) (int, string) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b) || b[i] < '0' || b[i] > '9':
		return i, "number without digits"
	case b[i] == '0':
		i++
	default:
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return i, "number without fraction digits"
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return i, "number without exponent digits"
		}
	}
	return i, ""
}

func scanLiteral(b []byte, i int, lit string) (int, string) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, "unexpected " + charAt(b, i)
	}
	return i + len(lit), ""
}

// charAt names the character at b[i] for an error message.
func charAt(b []byte, i int) string {
	if i >= len(b) {
		return "end of input"
	}
	r, _ := utf8.DecodeRune(b[i:])
	return strconv.QuoteRune(r)
}

// near quotes a little of b around pos for an error message.
func near(b []byte, pos int) string {
	if len(b) == 0 {
		return ""
	}
	start := max(0, pos-16)
	for start > 0 && start > pos-16-utf8.UTFMax && !utf8.RuneStart(b[start]) {
		start--
	}
	end := min(len(b), start+32)
	for end < len(b) && end < start+32+utf8.UTFMax && !utf8.RuneStart(b[end]) {
		end++
	}
	return " near " + strconv.Quote(string(b[start:end]))
}
