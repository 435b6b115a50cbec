package untrusted

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"short", "bert", `"bert"`},
		{"newline and escape", "a\nb\x1b[2J", `"a\nb\x1b[2J"`},
		{"long", strings.Repeat("x", 1000), `"` + strings.Repeat("x", 256) + `"…(1000 bytes)`},
		{"cut inside a character", strings.Repeat("x", 255) + "é" + strings.Repeat("y", 10), `"` + strings.Repeat("x", 255) + `"…(267 bytes)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := String(tt.in); got != tt.want {
				t.Errorf("String = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestBuffer(t *testing.T) {
	b := &Buffer{Limit: 10}
	for range 3 {
		if n, err := b.Write([]byte("12345678")); n != 8 || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if string(b.Bytes()) != "1234567812" || b.Dropped() != 14 {
		t.Errorf("kept %q, dropped %d", b.Bytes(), b.Dropped())
	}
}
