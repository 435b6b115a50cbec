package jobclean

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/sifkernel/sifkernel/wrapper/cache"
	"github.com/sifkernel/sifkernel/wrapper/fsx"
)

// Limits on what reapHolders looks at: it runs as the user in the Epilog.
const (
	maxProcs = 100000
	maxFDs   = 4096
)

// reapHolders kills the calling user's processes that still hold a cache
// entry open after it was evicted (its file deleted). Only an entry no job
// references is evicted, so such a process is left over from a job that
// ended: in practice Apptainer's squashfuse_ll, orphaned when a kernel is
// killed with SIGKILL (Jupyter's "shut down now", Slurm's KillWait) on a
// node whose proctrack does not follow orphans (proctrack/linuxproc). It
// keeps the deleted image's blocks in use, so the node cache fills up while
// looking empty; the soak found this. dirs are the cache directories whose
// entries count: the user's own, and the site's (a site entry the site
// child evicted is held by nobody's running job either: each holds a ref
// to what it uses). It returns how many it killed.
func reapHolders(dirs ...string) int {
	in := map[string]bool{}
	for _, d := range dirs {
		in[filepath.Clean(d)] = true
		if real, err := filepath.EvalSymlinks(d); err == nil {
			in[real] = true // what /proc shows, where the path has a (root's) link in it
		}
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	me := os.Geteuid()
	killed := 0
	for i, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if i >= maxProcs || err != nil || pid == os.Getpid() {
			continue
		}
		st, err := os.Stat("/proc/" + p.Name())
		if err != nil {
			continue
		}
		if o, ok := fsx.OwnerOf(st); !ok || o.UID != me {
			continue
		}
		if holdsDeleted(pid, in) && syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed++
		}
	}
	return killed
}

// holdsDeleted says whether pid has an evicted entry of one of the
// directories in open: deleted, in place or moved aside first (see
// cache.IsEntryName).
func holdsDeleted(pid int, in map[string]bool) bool {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	fds, _ := f.Readdirnames(maxFDs)
	for _, fd := range fds {
		target, err := os.Readlink(dir + "/" + fd)
		if err != nil {
			continue
		}
		if name, ok := strings.CutSuffix(target, " (deleted)"); ok && in[filepath.Dir(name)] && cache.IsEntryName(filepath.Base(name)) {
			return true
		}
	}
	return false
}
