package cache

import (
	"io"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Parallel reads. On a network file system one stream waits a round trip
// for each read the client sends, and cannot fill a link with latency on
// it; several streams, each reading its own range of a step, keep that
// many requests in flight. A step is still one unit: its ranges are all
// written before the next deadline check, so a copy cut off between steps
// holds the image's first bytes and nothing past them, as a one-stream copy
// does, and resumes the same way.

// networkFS are the statfs types of file systems that send reads over a
// network (linux/magic.h and the file systems' own headers), and whether
// "auto" reads them in several streams. A striped parallel file system
// (Lustre, GPFS, BeeGFS, Ceph) spreads a file over servers, and one stream
// asks one of them at a time. NFS and CIFS get one: the client's readahead
// keeps reads in flight already, and on the VM cluster's NFS with 20 ms of
// round trip four streams took 1.06 times one stream's time (testcluster/
// README.md, make bench-vm). FUSE is not among them: sshfs is, but most
// FUSE file systems on a node are local (squashfuse); read_streams = "4"
// turns streams on anywhere.
var networkFS = map[int64]struct {
	name    string
	striped bool
}{
	0x6969:     {"nfs", false},
	0xff534d42: {"cifs", false},
	0xfe534d42: {"smb2", false},
	0x0bd00bd0: {"lustre", true},
	0x47504653: {"gpfs", true},
	0x19830326: {"beegfs", true},
	0x00c36400: {"ceph", true},
}

// autoStreams is what "auto" (config.Cache.Streams 0) uses on a striped
// file system.
const autoStreams = 4

// streamsFor is how many streams copy src: the configured count, or with
// "auto" autoStreams where its file system is a striped one and 1
// elsewhere (a local disk gains nothing and copy_file_range may reflink).
// kind names a network file system, for the log.
func streamsFor(configured int, src *os.File) (n int, kind string) {
	var st unix.Statfs_t
	striped := false
	if err := unix.Fstatfs(int(src.Fd()), &st); err == nil {
		fs := networkFS[int64(uint32(st.Type))]
		kind, striped = fs.name, fs.striped
	}
	if configured > 0 {
		return configured, kind
	}
	if striped {
		return autoStreams, kind
	}
	return 1, kind
}

// streamBuf is what one stream reads at a time: 1 MiB, as NFS's rsize.
const streamBuf = 1 << 20

// copyStreams copies [off, off+step) of src into dst at the same offsets
// with n streams, each its own open file (its own readahead) over its own
// contiguous range. It returns how many bytes from off are in dst without
// a gap: a source shorter than it was ends the count there (check reports
// it).
func copyStreams(dst *os.File, srcs []*os.File, off, step int64) (int64, error) {
	n := int64(len(srcs))
	per := (step + n - 1) / n
	per = (per + streamBuf - 1) / streamBuf * streamBuf
	got := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		lo := off + i*per
		hi := min(lo+per, off+step)
		if lo >= hi {
			break
		}
		wg.Go(func() { got[i], errs[i] = copyRange(dst, srcs[i], lo, hi) })
	}
	wg.Wait()
	var total int64
	for i := range n {
		total += got[i]
		if errs[i] != nil {
			return total, errs[i]
		}
		if lo := off + i*per; got[i] < min(per, max(off+step-lo, 0)) {
			break // short: the source ended here
		}
	}
	return total, nil
}

// copyRange copies [lo, hi) with pread and pwrite.
func copyRange(dst, src *os.File, lo, hi int64) (int64, error) {
	buf := make([]byte, min(streamBuf, hi-lo))
	done := int64(0)
	for lo+done < hi {
		want := min(int64(len(buf)), hi-lo-done)
		r, err := src.ReadAt(buf[:want], lo+done)
		if r > 0 {
			if _, werr := dst.WriteAt(buf[:r], lo+done); werr != nil {
				return done, werr
			}
			done += int64(r)
		}
		if err == io.EOF {
			return done, nil
		}
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// openStreams opens n-1 more files on src's open file (through
// /proc/self/fd: the same file, whatever happened to its path since), so
// each stream has its own readahead.
func openStreams(src *os.File, n int) ([]*os.File, error) {
	fs := []*os.File{src}
	for range n - 1 {
		f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(src.Fd())), os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			closeStreams(fs)
			return nil, err
		}
		fs = append(fs, f)
	}
	return fs, nil
}

// closeStreams closes the files openStreams added (not src).
func closeStreams(fs []*os.File) {
	for _, f := range fs[1:] {
		f.Close()
	}
}
