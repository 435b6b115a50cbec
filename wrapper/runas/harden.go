package runas

import (
	"errors"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// CloseInherited marks every descriptor above 2 close-on-exec. Root hooks
// call it first thing: slurmd, a site's prolog.d runner or a wrapper may
// start them with a descriptor open (a log, a lock, a root-only file), and
// Go passes any descriptor not marked so on to every program it starts,
// the user's child among them. The program itself keeps them until it
// exits; nothing it starts gets them.
func CloseInherited() error {
	err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return err
	}
	// Before Linux 5.11: one fcntl a descriptor.
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	self := int(d.Fd())
	d.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err != nil || fd <= 2 || fd == self {
			continue
		}
		unix.CloseOnExec(fd)
	}
	return nil
}

// NotDumpable makes this process non-dumpable (prctl PR_SET_DUMPABLE 0): a
// process of the same user can no longer attach to it with ptrace, read its
// memory through /proc, or get a core dump of it. The hook's child calls it
// first thing, as it runs as the job user and root acts on what it prints.
// It does not stop a tracer that attached between exec and this call,
// signals from the user (the child can still be stopped or killed), or a
// user who controls the child's inputs: root bounds and checks what the
// child reports whatever it says.
func NotDumpable() error { return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0) }
