package runas

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// childFds lists the descriptors a child started through Run has.
func childFds(t *testing.T) []string {
	t.Helper()
	res, err := Run(context.Background(), Cmd{Path: "/bin/sh", Args: []string{"-c", "ls /proc/self/fd"}, UID: os.Geteuid(), GID: os.Getegid()})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(res.Stdout))
}

func TestNoInheritedDescriptorReachesTheChild(t *testing.T) {
	// A descriptor as a wrapper would pass one on: open, not close-on-exec.
	fd, err := syscall.Open(os.Args[0], syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Close(fd) }()
	name := strconv.Itoa(fd)
	has := func(fds []string) bool {
		for _, f := range fds {
			if f == name {
				return true
			}
		}
		return false
	}
	if !has(childFds(t)) {
		t.Fatalf("without CloseInherited the child should have inherited descriptor %d (the test's control)", fd)
	}
	if err := CloseInherited(); err != nil {
		t.Fatal(err)
	}
	if fds := childFds(t); has(fds) {
		t.Errorf("after CloseInherited the child still has descriptor %d: %v", fd, fds)
	}
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("descriptor %d: flags %#x, %v; want close-on-exec, and still open here", fd, flags, err)
	}
}

func TestNotDumpable(t *testing.T) {
	if err := NotDumpable(); err != nil {
		t.Fatal(err)
	}
	// PR_GET_DUMPABLE returns the flag as the call's value.
	v, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, unix.PR_GET_DUMPABLE, 0, 0)
	if errno != 0 || v != 0 {
		t.Errorf("PR_GET_DUMPABLE = %d (%v), want 0", v, errno)
	}
}
