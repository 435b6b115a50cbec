package slurm

import (
	"fmt"
	"io"
	"regexp"
	"strings"
)

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// TaskOutput writes what slurmd reads from a TaskProlog's stdout. slurmd
// takes a value literally to the end of the line, so a value holding a
// newline (or NUL, or CR) could inject further commands: it is refused.
type TaskOutput struct{ W io.Writer }

// Export sets name=value in the task's environment.
func (o TaskOutput) Export(name, value string) error {
	if err := checkLine(name, value); err != nil {
		return err
	}
	_, err := fmt.Fprintf(o.W, "export %s=%s\n", name, value)
	return err
}

func checkLine(name, value string) error {
	if !envName.MatchString(name) {
		return fmt.Errorf("TaskProlog: %q is not a variable name", name)
	}
	if strings.ContainsAny(value, "\n\r\x00") {
		return fmt.Errorf("TaskProlog: the value of %s holds a newline or NUL; not exported", name)
	}
	return nil
}
