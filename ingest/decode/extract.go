package decode

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The extractor reads tenant, source and time straight from the bytes of a
// message. The one walk over it (walk, in json.go) checks it and notes, on
// the way, where the values of the keys the paths name start (notes); values
// under a dotted path are then looked up in the object noted (objectGet),
// skipping the other members without looking inside (a string to its
// closing quote, an array or object by counting brackets outside strings).
// Nothing is copied but escaped strings, which are decoded into the
// decoder's scratch buffers.
//
// Every function here but notes' methods assumes valid JSON and indexes
// without checking whether the input ends early; on anything else it may
// panic. Decode only calls them on messages that walk accepted.

// notes is what walk notes in one message for the extractor.
type notes struct {
	top     []span  // by index in topKeys: where the top-level object's first occurrence of each key's value starts
	topKeys *keySet // the plain record's keys, and the envelopes' array keys
	// Indices of "records" and "Records" in topKeys, or -1.
	azureKey, cloudTrailKey int
	// azure and cloudTrail note the records of the first "records" and
	// the first "Records" of the top level, when that is an array.
	azure, cloudTrail envelopeNotes
	cur               *envelopeNotes // the envelope whose array is being walked, or nil
	keyBuf            []byte         // an escaped key, decoded
}

// envelopeNotes are the notes of one envelope's array. Offsets are int32
// (a Kafka message is shorter than 2 GiB) to keep the notes of a large
// envelope small: at most 4 bytes per element and key for a message of
// elements of 3 bytes ("{},").
type envelopeNotes struct {
	keys  *keySet // its records' keys
	found bool    // the array is there
	elems []int32 // where each element starts
	vals  []int32 // by element, len(keys.names) each: where its keys' values start (0: absent; all 0 for an element that is no object)
}

// maxKeptNotes is the most offsets an envelopeNotes keeps allocated from one
// message to the next; a larger envelope's are dropped after it is decoded.
const maxKeptNotes = 1 << 16

// reset forgets the last message.
func (n *notes) reset() {
	clear(n.top)
	n.cur = nil
	for _, e := range [...]*envelopeNotes{&n.azure, &n.cloudTrail} {
		if cap(e.vals) > maxKeptNotes || cap(e.elems) > maxKeptNotes {
			e.elems, e.vals = nil, nil
		}
		e.found, e.elems, e.vals = false, e.elems[:0], e.vals[:0]
	}
}

// member notes the member of the object at depth (1: the top level, 3: an
// element of the envelope array being walked) whose key is key (as written,
// escapes and all) and whose value starts at b[v] (v may be len(b) in an
// invalid message).
func (n *notes) member(b, key []byte, v, depth int) {
	if bytes.IndexByte(key, '\\') >= 0 {
		n.keyBuf = unescape(n.keyBuf[:0], key)
		key = n.keyBuf
	}
	if depth == 3 {
		e := n.cur
		if k := e.keys.find(key); k >= 0 && len(e.elems) > 0 {
			row := e.vals[len(e.vals)-len(e.keys.names):]
			if row[k] == 0 {
				row[k] = int32(v)
			}
		}
		return
	}
	n.cur = nil // a new top-level member: any envelope array before it has ended
	k := n.topKeys.find(key)
	if k < 0 || n.top[k].start != 0 {
		return
	}
	n.top[k].start = v
	if v < len(b) && b[v] == '[' {
		switch k {
		case n.azureKey:
			n.cur = &n.azure
		case n.cloudTrailKey:
			n.cur = &n.cloudTrail
		default:
			return
		}
		n.cur.found = true
	}
}

// element notes an element of the envelope array that starts at b[i],
// with a row of vals for its keys.
func (e *envelopeNotes) element(i int) {
	e.elems = append(e.elems, int32(i))
	m := len(e.keys.names)
	e.vals = slices.Grow(e.vals, m)[:len(e.vals)+m]
	clear(e.vals[len(e.vals)-m:])
}

// keySet is the set of keys a kind of record is read by: the first
// element of every path, and every dotted path as one literal key.
type keySet struct {
	names []string
	byLen [][]int // byLen[n] holds the indices of the names n bytes long
	bloom uint64  // bit keyHash(name) set for every name
}

// keyHash hashes a key (of at least one byte) to a bit of keySet.bloom.
func keyHash[S ~string | ~[]byte](key S) uint {
	return (uint(len(key)) ^ uint(key[0])<<1 ^ uint(key[len(key)-1])<<2) % 64
}

// add returns the index of name, adding it if it is new.
func (s *keySet) add(name string) int {
	if i := slices.Index(s.names, name); i >= 0 {
		return i
	}
	s.names = append(s.names, name)
	for len(s.byLen) <= len(name) {
		s.byLen = append(s.byLen, nil)
	}
	s.byLen[len(name)] = append(s.byLen[len(name)], len(s.names)-1)
	s.bloom |= 1 << keyHash(name)
	return len(s.names) - 1
}

// find returns the index of the (unescaped) key, or -1.
func (s *keySet) find(key []byte) int {
	if len(key) == 0 || len(key) >= len(s.byLen) || s.bloom&(1<<keyHash(key)) == 0 {
		return -1
	}
	for _, i := range s.byLen[len(key)] {
		if string(key) == s.names[i] {
			return i
		}
	}
	return -1
}

// keyPath is one configured path, resolved against a keySet.
type keyPath struct {
	key     int      // index of the first element (of the whole path if it has no '.')
	rest    []string // the elements after the first; nil without a '.'
	literal int      // index of the whole dotted path as one key; -1 without a '.'
}

// path returns the lookup of the dotted path p, adding the keys it needs.
func (s *keySet) path(p string) keyPath {
	first, rest, dotted := strings.Cut(p, ".")
	dp := keyPath{key: s.add(first), literal: -1}
	if dotted {
		dp.rest = strings.Split(rest, ".")
		dp.literal = s.add(p)
	}
	return dp
}

// skipColon returns where the value starts after the key that ends
// before b[i]: past the colon and any whitespace around it.
func skipColon(b []byte, i int) int {
	if b[i] != ':' {
		i = skipWS(b, i)
	}
	i++
	if b[i] <= ' ' {
		i = skipWS(b, i)
	}
	return i
}

// nextMember is called after a member's value, which ends before b[i]. It
// returns where the next member's key starts, or -1 and the index after the
// object's closing brace.
func nextMember(b []byte, i int) (next, end int) {
	if b[i] <= ' ' {
		i = skipWS(b, i)
	}
	if b[i] == '}' {
		return -1, i + 1
	}
	i++ // the comma
	if b[i] <= ' ' {
		i = skipWS(b, i)
	}
	return i, 0
}

// span is where a value is: its start (0 for none) and, once known,
// the index after it and whether it is a string with escapes.
type span struct {
	start, end int
	escaped    bool
}

// spanAt returns the span of the value that starts at b[v]; it finds the
// end of a string, not of other values.
func spanAt(b []byte, v int) span {
	if b[v] != '"' {
		return span{start: v}
	}
	end, escaped := stringEnd(b, v+1)
	return span{start: v, end: end + 1, escaped: escaped}
}

// objectGet returns where the value of the first occurrence of key in
// the object at b[i] starts, or 0 if key is absent.
func objectGet(b []byte, i int, key string, scratch *[]byte) int {
	i = skipWS(b, i+1)
	if b[i] == '}' {
		return 0
	}
	for {
		end, escaped := stringEnd(b, i+1)
		name := b[i+1 : end]
		if escaped {
			*scratch = unescape((*scratch)[:0], name)
			name = *scratch
		}
		v := skipColon(b, end+1)
		if string(name) == key {
			return v
		}
		next, _ := nextMember(b, skipValue(b, v))
		if next < 0 {
			return 0
		}
		i = next
	}
}

// present reports whether the value was found and is not null.
func (s span) present(b []byte) bool {
	return s.start != 0 && b[s.start] != 'n'
}

// skipValue returns the index after the value that starts at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i+1) + 1
	case '{', '[':
		return skipContainer(b, i)
	case 't', 'n':
		return i + len("true")
	case 'f':
		return i + len("false")
	}
	return numberEnd(b, i)
}

// numberEnd returns the index after the number that starts at b[i].
func numberEnd(b []byte, i int) int {
	for i < len(b) && numberByte[b[i]] {
		i++
	}
	return i
}

var numberByte = func() (t [256]bool) {
	for _, c := range []byte("0123456789+-.eE") {
		t[c] = true
	}
	return t
}()

// stringEnd returns the index of the closing quote of the string whose
// content starts at b[i], and whether the string has an escape.
func stringEnd(b []byte, i int) (end int, escaped bool) {
	for {
		// Eight bytes at a time while none is a quote or a backslash. The
		// lowest flagged byte of hasZero is exact (only bytes above a
		// real zero byte may be flagged falsely).
		for i+8 <= len(b) {
			w := binary.LittleEndian.Uint64(b[i:])
			if m := hasZero(w^(ones*'"')) | hasZero(w^(ones*'\\')); m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		for b[i] != '"' && b[i] != '\\' {
			i++
		}
		if b[i] == '"' {
			return i, escaped
		}
		escaped = true
		i += 2 // a \uXXXX escape's hex digits are no quote nor backslash
	}
}

// skipString returns the index of the closing quote of the string whose
// content starts at b[i]. Unlike stringEnd it looks for quotes only: a
// quote after an odd number of backslashes is escaped.
func skipString(b []byte, i int) int {
	for {
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:]) ^ (ones * '"')
			if m := hasZero(x); m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		for b[i] != '"' {
			i++
		}
		if b[i-1] != '\\' {
			return i
		}
		j := i - 2
		for b[j] == '\\' {
			j--
		}
		if (i-j)%2 == 1 { // i-1-j backslashes, an even number
			return i
		}
		i++
	}
}

// skipContainer returns the index after the array or object that starts
// at b[i].
func skipContainer(b []byte, i int) int {
	depth := 0
	for {
		switch structure[b[i]] {
		case classQuote:
			i = skipString(b, i+1)
		case classOpen:
			depth++
		case classClose:
			depth--
			if depth == 0 {
				return i + 1
			}
		}
		i++
	}
}

// Classes of bytes for skipContainer; other bytes are 0.
const (
	classQuote = 1 + iota
	classOpen
	classClose
)

var structure = func() (t [256]uint8) {
	t['"'] = classQuote
	t['{'], t['['] = classOpen, classOpen
	t['}'], t[']'] = classClose, classClose
	return t
}()

// stringText returns the decoded content of the string at s: a part of b if it
// has no escape, else *scratch decoded into.
func stringText(b []byte, s span, scratch *[]byte) []byte {
	if s.end == 0 {
		s = spanAt(b, s.start)
	}
	if !s.escaped {
		return b[s.start+1 : s.end-1]
	}
	*scratch = unescape((*scratch)[:0], b[s.start+1:s.end-1])
	return *scratch
}

// unescape appends the decoded content of a valid JSON string (without
// its quotes) to dst. A \u escape of a UTF-16 surrogate that is not half
// of a valid pair decodes to U+FFFD, as in encoding/json.
func unescape(dst, s []byte) []byte {
	for {
		j := bytes.IndexByte(s, '\\')
		if j < 0 || j+1 >= len(s) {
			return append(dst, s...)
		}
		dst = append(dst, s[:j]...)
		c := s[j+1]
		s = s[j+2:]
		switch c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(s)
			if !ok {
				return append(dst, s...) // not valid JSON; not reached
			}
			s = s[4:]
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if len(s) >= 6 && s[0] == '\\' && s[1] == 'u' {
					r2, _ = hex4(s[2:])
				}
				if r = utf16.DecodeRune(r, r2); r != utf8.RuneError {
					s = s[6:]
				}
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
	}
}

// hex4 decodes the four hex digits at the start of s.
func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	r := 0
	for _, c := range s[:4] {
		v, ok := hexVal(c)
		if !ok {
			return 0, false
		}
		r = r<<4 | v
	}
	return rune(r), true
}
