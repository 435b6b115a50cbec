// Package untrusted bounds what a user can shape on its way into root's
// memory and logs: strings are quoted (no newline or terminal escape gets
// through) and cut, and a child's output is kept up to a limit and counted
// beyond it.
package untrusted

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// MaxLogString is how much of a user's string a log line shows.
const MaxLogString = 256

// String quotes s for a log line, cut to MaxLogString bytes with its full
// length noted: a kernel name or an image path may be a megabyte long and
// hold newlines and escape sequences.
func String(s string) string {
	if len(s) <= MaxLogString {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%s…(%d bytes)", strconv.Quote(Cut(s, MaxLogString)), len(s))
}

// Cut returns at most n bytes of s, not splitting a UTF-8 character.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Buffer is an io.Writer that keeps the first Limit bytes written to it and
// counts the rest, so a child that prints without end costs its reader a
// fixed amount of memory. It never fails a write: the child is not the one
// to learn that its output was cut.
type Buffer struct {
	Limit   int
	data    []byte
	dropped int64
}

// Write keeps what fits and counts what does not.
func (b *Buffer) Write(p []byte) (int, error) {
	room := b.Limit - len(b.data)
	if room > len(p) {
		room = len(p)
	}
	if room > 0 {
		b.data = append(b.data, p[:room]...)
	}
	b.dropped += int64(len(p) - max(room, 0))
	return len(p), nil
}

// Bytes is what was kept.
func (b *Buffer) Bytes() []byte { return b.data }

// Dropped is how many bytes were written past the limit.
func (b *Buffer) Dropped() int64 { return b.dropped }
