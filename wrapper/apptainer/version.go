package apptainer

import (
	"strconv"
	"strings"
)

// CompareVersions orders version strings (or paths holding them) the way a
// person reads them: runs of digits compare as numbers, so 1.10.0 > 1.9.3.
// A release sorts above its pre-releases: 1.3.0 > 1.3.0-rc.1.
func CompareVersions(a, b string) int {
	for a != "" && b != "" {
		ca, ra := chunk(a)
		cb, rb := chunk(b)
		if c := compareChunk(ca, cb); c != 0 {
			return c
		}
		a, b = ra, rb
	}
	switch {
	case a == b:
		return 0
	case a == "":
		return preRelease(b)
	default:
		return -preRelease(a)
	}
}

// preRelease says how a version compares with the same version plus rest:
// a "-rc1" style suffix makes the longer one older, anything else newer.
func preRelease(rest string) int {
	if strings.HasPrefix(rest, "-") || strings.HasPrefix(rest, "~") {
		return 1
	}
	return -1
}

func chunk(s string) (string, string) {
	digit := s[0] >= '0' && s[0] <= '9'
	i := 1
	for i < len(s) && (s[i] >= '0' && s[i] <= '9') == digit {
		i++
	}
	return s[:i], s[i:]
}

func compareChunk(a, b string) int {
	na, ea := strconv.ParseUint(a, 10, 64)
	nb, eb := strconv.ParseUint(b, 10, 64)
	switch {
	case ea == nil && eb == nil:
		return cmpInt(na, nb)
	case ea == nil:
		return 1 // a number outranks text at the same place: 1.3.3 > 1.3.x
	case eb == nil:
		return -1
	}
	return strings.Compare(a, b)
}

func cmpInt(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ParseVersion takes the version from `apptainer --version` output such as
// "apptainer version 1.3.3" or "singularity-ce version 4.1.0".
func ParseVersion(out string) string {
	fields := strings.Fields(out)
	for i, f := range fields {
		if f == "version" && i+1 < len(fields) {
			return fields[i+1]
		}
	}
	if len(fields) > 0 {
		return fields[len(fields)-1]
	}
	return ""
}
