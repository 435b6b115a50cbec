package testkit

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// SlowFS mounts at mnt (an empty directory) a read-only FUSE view of src
// whose files read at rate bytes a second at most, for as long as the test
// runs: a stand-in for a busy shared file system (a parallel file system
// under load, NFS over a long link), with the owners, modes and times of
// src. The kernel checks permissions (default_permissions) and caches no
// file data (direct I/O), so every read of every process pays the rate.
// It needs root and /dev/fuse; without them the test is skipped (a failure
// under SIFKERNEL_NO_SKIP).
func SlowFS(t testing.TB, src, mnt string, rate int64) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "a slow FUSE source needs root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		Skip(t, "a slow FUSE source needs /dev/fuse")
	}
	var st unix.Stat_t
	if err := unix.Stat(src, &st); err != nil {
		t.Fatal(err)
	}
	slow := &slowNode{LoopbackNode: &fs.LoopbackNode{RootData: &fs.LoopbackRoot{Path: src, Dev: st.Dev}}, rate: rate}
	second := time.Second
	srv, err := fs.Mount(mnt, slow, &fs.Options{
		AttrTimeout: &second, EntryTimeout: &second,
		MountOptions: fuse.MountOptions{AllowOther: true, DirectMount: true, FsName: "slowfs", Name: "slowfs",
			Options: []string{"default_permissions", "ro"}},
	})
	if err != nil {
		t.Fatalf("mounting a slow view of %s at %s: %v", src, mnt, err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			_ = unix.Unmount(mnt, unix.MNT_DETACH)
		}
	})
}

// slowNode is a loopback node whose files read slowly.
type slowNode struct {
	*fs.LoopbackNode
	rate int64
}

var (
	_ fs.NodeWrapChilder = (*slowNode)(nil)
	_ fs.NodeOpener      = (*slowNode)(nil)
)

// WrapChild makes every node below the root slow too.
func (n *slowNode) WrapChild(_ context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &slowNode{LoopbackNode: ops.(*fs.LoopbackNode), rate: n.rate}
}

// Open opens the file for direct I/O (no page cache) behind a slow handle.
func (n *slowNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, _, errno := n.LoopbackNode.Open(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return &slowFile{f: fh.(*fs.LoopbackFile), rate: n.rate}, fuse.FOPEN_DIRECT_IO, 0
}

// slowFile serves reads at rate. It holds the loopback file rather than
// embedding it, so no pass-through of the descriptor bypasses the rate.
type slowFile struct {
	f    *fs.LoopbackFile
	rate int64
}

var (
	_ fs.FileReader    = (*slowFile)(nil)
	_ fs.FileReleaser  = (*slowFile)(nil)
	_ fs.FileGetattrer = (*slowFile)(nil)
	_ fs.FileLseeker   = (*slowFile)(nil)
)

func (s *slowFile) Read(ctx context.Context, buf []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	time.Sleep(time.Duration(float64(len(buf)) / float64(s.rate) * float64(time.Second)))
	return s.f.Read(ctx, buf, off)
}

func (s *slowFile) Release(ctx context.Context) syscall.Errno { return s.f.Release(ctx) }

func (s *slowFile) Getattr(ctx context.Context, a *fuse.AttrOut) syscall.Errno {
	return s.f.Getattr(ctx, a)
}

func (s *slowFile) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return s.f.Lseek(ctx, off, whence)
}
