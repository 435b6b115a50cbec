package kernelspec

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Python's json module, which Jupyter loads kernel.json with, is not Go's:
// it accepts NaN, Infinity and -Infinity, keeps lone surrogates, refuses
// integers of more than 4,300 digits and gives up on deep nesting, how deep
// depending on the Python (see Jupyter.MaxJSONDepth). scan follows those
// rules, refusing only what no modelled Python loads, records the depth,
// and hands Go's decoder a copy it can read.

const (
	// pyMaxDepth is the deepest nesting any modelled Python's json loads
	// inside jupyter_client (3.13's); Discover applies the model's own.
	// Go's encoding/json stops at 10,000.
	pyMaxDepth = 9997
	// pyMaxIntDigits is Python's int_max_str_digits default (3.11).
	pyMaxIntDigits = 4300
)

// member is one key of the top-level object, with its value's bytes in the
// original file (kept byte for byte when the field is not changed).
type member struct {
	Key string
	Raw []byte // the value as written
	Std []byte // the value as Go's encoding/json can read it (NaN -> null)
}

// scanned is a kernel.json read the way Python reads it.
type scanned struct {
	Object  bool     // the top level is an object
	Members []member // in file order; a repeated key appears each time
	Depth   int
}

// PyJSONError is JSON that Python's json.load refuses, at a byte offset.
type PyJSONError struct {
	Offset int
	Msg    string
}

func (e *PyJSONError) Error() string { return e.Msg }

type pyScanner struct {
	data  []byte
	i     int
	depth int
	max   int
	out   []byte // the Go-readable copy of the value being scanned
}

// scan checks data as Python's json.loads would and splits the top-level
// object into members.
func scan(data []byte) (*scanned, error) {
	if !utf8.Valid(data) {
		off := 0
		for off < len(data) {
			r, n := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			off += n
		}
		return nil, &PyJSONError{Offset: off, Msg: fmt.Sprintf("not UTF-8 (byte 0x%02x at offset %d): Python cannot decode it", data[off], off)}
	}
	s := &pyScanner{data: data}
	if len(data) >= 3 && string(data[:3]) == "\ufeff" {
		return nil, &PyJSONError{Msg: "a UTF-8 byte order mark: Python's json refuses it"}
	}
	s.ws()
	res := &scanned{}
	if s.peek() == '{' {
		res.Object = true
		if err := s.topObject(res); err != nil {
			return nil, err
		}
	} else if err := s.value(); err != nil {
		return nil, err
	}
	s.ws()
	if s.i < len(data) {
		return nil, s.errf("extra data after the JSON value")
	}
	res.Depth = s.max
	return res, nil
}

func (s *pyScanner) peek() byte {
	if s.i < len(s.data) {
		return s.data[s.i]
	}
	return 0
}

func (s *pyScanner) errf(format string, args ...any) error {
	return &PyJSONError{Offset: s.i, Msg: fmt.Sprintf(format, args...)}
}

func (s *pyScanner) ws() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// topObject scans the top-level object, recording each member.
func (s *pyScanner) topObject(res *scanned) error {
	s.i++
	s.enter()
	s.ws()
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		s.ws()
		if s.peek() != '"' {
			return s.errf("expecting a property name in double quotes")
		}
		start := s.i
		s.out = nil
		if err := s.str(); err != nil {
			return err
		}
		key, err := strconv.Unquote(string(s.data[start:s.i]))
		if err != nil {
			key = goString(s.data[start:s.i])
		}
		s.ws()
		if s.peek() != ':' {
			return s.errf("expecting ':' delimiter")
		}
		s.i++
		s.ws()
		vstart := s.i
		s.out = []byte{}
		if err := s.value(); err != nil {
			return err
		}
		res.Members = append(res.Members, member{Key: key, Raw: s.data[vstart:s.i], Std: s.out})
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.errf("expecting ',' delimiter")
		}
	}
}

// goString decodes a JSON string literal the way encoding/json does.
func goString(lit []byte) string {
	var out string
	if err := json.Unmarshal(lit, &out); err != nil {
		return string(lit)
	}
	return out
}

func (s *pyScanner) enter() {
	s.depth++
	s.max = max(s.max, s.depth)
}

func (s *pyScanner) emit(b []byte) {
	if s.out != nil {
		s.out = append(s.out, b...)
	}
}

func (s *pyScanner) value() error {
	if s.depth >= pyMaxDepth {
		return s.errf("nested more than %d deep: Python's JSON parser gives up (RecursionError)", pyMaxDepth)
	}
	switch c := s.peek(); {
	case c == '{':
		return s.container('{', '}', true)
	case c == '[':
		return s.container('[', ']', false)
	case c == '"':
		start := s.i
		if err := s.str(); err != nil {
			return err
		}
		s.emit(s.data[start:s.i])
		return nil
	case c == 'N' && s.literal("NaN"), c == 'I' && s.literal("Infinity"), c == '-' && s.literal("-Infinity"):
		s.emit([]byte("null")) // Go has no NaN in JSON; every trait treats it as a number, not a string
		return nil
	case c == 't' && s.literal("true"), c == 'f' && s.literal("false"), c == 'n' && s.literal("null"):
		return nil
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	return s.errf("expecting a value")
}

// literal consumes word if it is next, and copies it to the Go copy
// (callers replace NaN and the infinities).
func (s *pyScanner) literal(word string) bool {
	if len(s.data)-s.i < len(word) || string(s.data[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	if word != "NaN" && word != "Infinity" && word != "-Infinity" {
		s.emit([]byte(word))
	}
	return true
}

func (s *pyScanner) container(open, close byte, object bool) error {
	s.i++
	s.enter()
	defer func() { s.depth-- }()
	s.emit([]byte{open})
	s.ws()
	if s.peek() == close {
		s.i++
		s.emit([]byte{close})
		return nil
	}
	for {
		s.ws()
		if object {
			if s.peek() != '"' {
				return s.errf("expecting a property name in double quotes")
			}
			start := s.i
			if err := s.str(); err != nil {
				return err
			}
			s.emit(s.data[start:s.i])
			s.ws()
			if s.peek() != ':' {
				return s.errf("expecting ':' delimiter")
			}
			s.i++
			s.emit([]byte{':'})
			s.ws()
		}
		if err := s.value(); err != nil {
			return err
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
			s.emit([]byte{','})
		case close:
			s.i++
			s.emit([]byte{close})
			return nil
		default:
			return s.errf("expecting ',' delimiter")
		}
	}
}

// str scans a string literal: no raw control characters, only JSON's
// escapes (a lone surrogate escape is fine for Python).
func (s *pyScanner) str() error {
	s.i++
	for s.i < len(s.data) {
		c := s.data[s.i]
		switch {
		case c == '"':
			s.i++
			return nil
		case c < 0x20:
			return s.errf("invalid control character in a string")
		case c == '\\':
			if s.i+1 >= len(s.data) {
				return s.errf("unterminated string")
			}
			switch s.data[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.data) {
					return s.errf("invalid \\uXXXX escape")
				}
				if _, err := strconv.ParseUint(string(s.data[s.i+2:s.i+6]), 16, 16); err != nil {
					return s.errf("invalid \\uXXXX escape")
				}
				s.i += 6
			default:
				return s.errf("invalid \\escape")
			}
		default:
			s.i++
		}
	}
	return s.errf("unterminated string")
}

func (s *pyScanner) number() error {
	start := s.i
	if s.peek() == '-' {
		s.i++
	}
	digits := s.i
	switch {
	case s.peek() == '0':
		s.i++
	case s.peek() >= '1' && s.peek() <= '9':
		for s.peek() >= '0' && s.peek() <= '9' {
			s.i++
		}
	default:
		return s.errf("expecting a value")
	}
	intDigits := s.i - digits
	isInt := true
	if s.peek() == '.' && s.i+1 < len(s.data) && s.data[s.i+1] >= '0' && s.data[s.i+1] <= '9' {
		isInt = false
		s.i++
		for s.peek() >= '0' && s.peek() <= '9' {
			s.i++
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		j := s.i + 1
		if j < len(s.data) && (s.data[j] == '+' || s.data[j] == '-') {
			j++
		}
		if j < len(s.data) && s.data[j] >= '0' && s.data[j] <= '9' {
			isInt = false
			s.i = j
			for s.peek() >= '0' && s.peek() <= '9' {
				s.i++
			}
		}
	}
	if isInt && intDigits > pyMaxIntDigits {
		return s.errf("an integer of %d digits: Python refuses more than %d (ValueError)", intDigits, pyMaxIntDigits)
	}
	s.emit(s.data[start:s.i])
	return nil
}
