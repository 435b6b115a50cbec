// Package runas runs a program as a job's user, the way root hooks must touch
// anything a user owns: a child with the user's uid, gid and groups, stdin
// from /dev/null, a fixed PATH and a scrubbed environment, its own process
// group (killed whole on timeout), and its output captured.
package runas

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/sifkernel/sifkernel/wrapper/untrusted"
)

// Path is the only PATH a child gets.
const Path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Cmd is a program to run as a user.
type Cmd struct {
	Path    string   // absolute path of the program
	Args    []string // after the program name
	UID     int
	GID     int
	Groups  []int
	Env     []string // the whole environment, besides PATH
	Dir     string   // working directory; "" means /
	Timeout time.Duration
}

// WaitDelay is the longest Run waits for a killed child's output to close
// (a grandchild that holds it open) before it returns: a hook's deadline
// keeps this much after the last child's kill (see lifecycle's deadline).
const WaitDelay = 2 * time.Second

// ErrNoTime is a child Run did not start: its timeout was used up already.
var ErrNoTime = errors.New("no time left to start it")

// ErrKilled marks a child Run killed at its timeout or ctx's deadline.
var ErrKilled = errors.New("killed at its deadline")

// Limits on what Run keeps of a child's output: the child may be steered
// by a user (a kernel.json a megabyte long, a million kernels) and root
// must not hold or log without bound what it prints.
const (
	MaxStdout = 1 << 20
	MaxStderr = 64 << 10
)

// ErrOutputTooLong marks a child that printed more than MaxStdout.
var ErrOutputTooLong = errors.New("output too long")

// Result is what the child printed, up to the limits.
type Result struct {
	Stdout []byte
	Stderr []byte
}

// Error is a child that failed, with what it said.
type Error struct {
	Cmd    string
	Err    error
	Stderr string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %v", e.Cmd, e.Err)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + lastLines(s, 5)
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Run runs c and waits, at most c.Timeout. As root it switches to c's user;
// as that user already it runs the program directly; any other user cannot
// run something as someone else.
//
// A Timeout of 0 means none of its own (ctx's deadline still holds); a
// negative one, or a ctx that has ended, starts nothing (ErrNoTime).
func Run(ctx context.Context, c Cmd) (Result, error) {
	if c.Timeout < 0 || ctx.Err() != nil {
		return Result{}, fmt.Errorf("%s: %w", c.Path, ErrNoTime)
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Env = append([]string{"PATH=" + Path}, c.Env...)
	cmd.Dir = c.Dir
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	switch euid := os.Geteuid(); {
	case euid == 0:
		groups := make([]uint32, 0, len(c.Groups))
		for _, g := range c.Groups {
			groups = append(groups, uint32(g))
		}
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(c.UID), Gid: uint32(c.GID), Groups: groups}
	case euid != c.UID:
		return Result{}, fmt.Errorf("running %s as uid %d: only root can (this is uid %d)", c.Path, c.UID, euid)
	}
	// Kill the whole process group, not only the child, on timeout.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = WaitDelay
	out, errb := &untrusted.Buffer{Limit: MaxStdout}, &untrusted.Buffer{Limit: MaxStderr}
	cmd.Stdout, cmd.Stderr = out, errb
	err := cmd.Run()
	res := Result{Stdout: out.Bytes(), Stderr: errb.Bytes()}
	if err == nil && out.Dropped() > 0 {
		err = fmt.Errorf("%w: %d bytes past the first %d were dropped", ErrOutputTooLong, out.Dropped(), MaxStdout)
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%w after %s: %w", ErrKilled, c.Timeout, err)
		}
		return res, &Error{Cmd: c.Path, Err: err, Stderr: string(errb.Bytes())}
	}
	return res, nil
}

// lastLines gives the child's last n lines for a log line: each quoted and
// cut (see untrusted.String), as the child may echo what a user wrote.
func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		lines[i] = untrusted.String(l)
	}
	return strings.Join(lines, " | ")
}
