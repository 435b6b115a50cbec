package runas

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

func TestRunAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		testkit.Skip(t, "switching users needs root")
	}
	r, err := Run(context.Background(), Cmd{
		Path: "/bin/sh", Args: []string{"-c", "id -u; id -g; id -G; echo \"$PATH|$HOME|$SECRET\"; cat; pwd"},
		UID: 1234, GID: 2345, Groups: []int{2345, 3456}, Env: []string{"HOME=/home/x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "1234\n2345\n2345 3456\n" + Path + "|/home/x|\n/\n"
	if string(r.Stdout) != want {
		t.Errorf("child saw %q, want %q", r.Stdout, want)
	}
}

func TestRunFailures(t *testing.T) {
	uid := os.Geteuid()
	r, err := Run(context.Background(), Cmd{Path: "/bin/sh", Args: []string{"-c", "echo bad thing >&2; exit 3"}, UID: uid, GID: os.Getegid()})
	if err == nil || !strings.Contains(err.Error(), "bad thing") || string(r.Stderr) != "bad thing\n" {
		t.Errorf("a failing child: %v", err)
	}
	start := time.Now()
	_, err = Run(context.Background(), Cmd{Path: "/bin/sh", Args: []string{"-c", "sleep 30 & sleep 30; wait"}, UID: uid, GID: os.Getegid(), Timeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrKilled) || time.Since(start) > 5*time.Second {
		t.Errorf("a hanging child: %v after %v", err, time.Since(start))
	}
	if uid != 0 {
		if _, err := Run(context.Background(), Cmd{Path: "/bin/true", UID: uid + 1}); err == nil {
			t.Error("a non-root process ran something as another user")
		}
	}
}

func TestRunBoundsOutput(t *testing.T) {
	uid := os.Geteuid()
	// 8 MiB on each stream, with a newline-free escape-laden last line.
	script := "head -c 8388608 /dev/zero; head -c 8388608 /dev/zero | tr '\\0' 'x' >&2; printf '\\033[2J\\nevil' >&2; exit 1"
	r, err := Run(context.Background(), Cmd{Path: "/bin/sh", Args: []string{"-c", script}, UID: uid, GID: os.Getegid()})
	if len(r.Stdout) != MaxStdout || len(r.Stderr) != MaxStderr {
		t.Errorf("kept %d and %d bytes, want %d and %d", len(r.Stdout), len(r.Stderr), MaxStdout, MaxStderr)
	}
	if err == nil || len(err.Error()) > 4096 || strings.ContainsAny(err.Error(), "\n\x1b") {
		t.Errorf("error message of %d bytes, escapes or newlines in it: %.300q", len(err.Error()), err)
	}
	_, err = Run(context.Background(), Cmd{Path: "/bin/sh", Args: []string{"-c", "head -c 2000000 /dev/zero"}, UID: uid, GID: os.Getegid()})
	if !errors.Is(err, ErrOutputTooLong) {
		t.Errorf("a child printing 2 MB and exiting 0: err = %v, want ErrOutputTooLong", err)
	}
}
