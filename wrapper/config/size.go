package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Size is an amount of disk space: either an absolute number of bytes or a
// percentage of the filesystem it applies to ("50%").
type Size struct {
	Bytes   int64   // absolute size; used when Percent is 0
	Percent float64 // share of the filesystem, 0 < Percent <= 100
	text    string
}

var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// ParseSize reads "2GiB", "500MB", "1048576" or "50%".
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(t, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || v <= 0 || v > 100 || math.IsNaN(v) {
			return Size{}, fmt.Errorf("size %q: a percentage must be above 0 and at most 100", s)
		}
		return Size{Percent: v, text: t}, nil
	}
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	}
	mult, ok := sizeUnits[unit]
	v, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || v < 0 {
		return Size{}, fmt.Errorf("size %q: want a number with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB) or a percentage", s)
	}
	if v*mult > math.MaxInt64 {
		return Size{}, fmt.Errorf("size %q: too large", s)
	}
	return Size{Bytes: int64(v * mult), text: t}, nil
}

// Of resolves the size against a filesystem of total bytes.
func (s Size) Of(total uint64) uint64 {
	if s.Percent > 0 {
		return uint64(float64(total) * s.Percent / 100)
	}
	return uint64(s.Bytes)
}

// String gives the size as it was written.
func (s Size) String() string {
	if s.text != "" {
		return s.text
	}
	return strconv.FormatInt(s.Bytes, 10)
}

// UnmarshalText lets TOML and flags fill a Size.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalText writes the size as it was written.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Duration is a time.Duration written in Go syntax ("120s", "1h30m").
type Duration struct {
	time.Duration
	text string
}

// UnmarshalText parses Go duration syntax.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("duration %q: want Go syntax such as \"90s\" or \"1h30m\"", string(b))
	}
	if v < 0 {
		return fmt.Errorf("duration %q: must not be negative", string(b))
	}
	d.Duration, d.text = v, strings.TrimSpace(string(b))
	return nil
}

// MarshalText writes the duration as it was written.
func (d Duration) MarshalText() ([]byte, error) {
	if d.text != "" {
		return []byte(d.text), nil
	}
	return []byte(d.Duration.String()), nil
}
