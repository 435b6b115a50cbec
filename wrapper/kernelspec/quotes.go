package kernelspec

import (
	"unicode"
	"unicode/utf8"
)

func isCurly(r rune) bool { return r == '“' || r == '”' || r == '‘' || r == '’' }

// RepairQuotes replaces curly quotes that stand where JSON needs a straight
// double quote: one that opens a string outside any string, and the curly
// quote that closes such a string (one followed by , : ] } or the end).
// Curly quotes inside properly quoted strings are text and are kept. It
// returns the repaired bytes, the offset of the first replacement, and
// whether anything changed.
func RepairQuotes(data []byte) ([]byte, int, bool) {
	out := make([]byte, 0, len(data))
	first, inStr, curlyOpen := -1, false, false
	replace := func(at int) {
		out = append(out, '"')
		if first < 0 {
			first = at
		}
	}
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case !inStr && r == '"':
			inStr, curlyOpen = true, false
			out = append(out, '"')
		case !inStr && isCurly(r):
			inStr, curlyOpen = true, true
			replace(i)
		case inStr && r == '\\' && i+1 < len(data):
			out = append(out, data[i:i+2]...)
			size = 2
		case inStr && r == '"':
			inStr = false
			out = append(out, '"')
		case inStr && curlyOpen && isCurly(r) && closes(data[i+size:]):
			inStr = false
			replace(i)
		default:
			out = append(out, data[i:i+size]...)
		}
		i += size
	}
	return out, first, first >= 0
}

// closes reports whether what follows a quote is where a JSON string may end.
func closes(rest []byte) bool {
	for len(rest) > 0 {
		r, size := utf8.DecodeRune(rest)
		if !unicode.IsSpace(r) {
			return r == ',' || r == ':' || r == ']' || r == '}'
		}
		rest = rest[size:]
	}
	return true
}
