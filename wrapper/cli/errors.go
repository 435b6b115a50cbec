package cli

import (
	"errors"
	"fmt"
)

// UsageError is a command line that does not parse: main exits 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// ErrProblemsFound says a check found errors it already reported: main exits
// 1 without printing anything more.
var ErrProblemsFound = errors.New("problems found")
