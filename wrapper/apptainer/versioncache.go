package apptainer

import (
	"context"
	"encoding/json"
	"os"
	"syscall"

	"github.com/sifkernel/sifkernel/wrapper/fsx"
)

// versionEntry is what FindCached remembers: a runtime's identity and the
// version it printed.
type versionEntry struct {
	Path    string   `json:"path"`
	ID      [5]int64 `json:"id"` // device, inode, size, mtime and ctime in ns
	Version string   `json:"version"`
}

// FindCached is Find with the version remembered in file, keyed by the
// runtime's identity (device, inode, size, modification and change times),
// so an Apptainer upgraded or replaced in place is asked again. Running
// `apptainer --version` costs a Prolog 20 ms; the version is only recorded in
// the job's kernelspecs, so a node asks once per user and install. The file
// is the calling user's (their node cache): a user who edits it changes
// what their own kernels' metadata says, nothing more. An unusable file is
// ignored and replaced.
func (f Finder) FindCached(ctx context.Context, file string) (Runtime, error) {
	rt, err := f.Locate()
	if err != nil {
		return rt, err
	}
	id, ok := identity(rt.Path)
	if !ok {
		rt.Version = f.version(ctx, rt.Path)
		return rt, nil
	}
	var cached versionEntry
	if data, err := fsx.ReadRegular(file, 4096, true); err == nil && json.Unmarshal(data, &cached) == nil &&
		cached.Path == rt.Path && cached.ID == id && cached.Version != "" {
		rt.Version = cached.Version
		return rt, nil
	}
	rt.Version = f.version(ctx, rt.Path)
	if rt.Version != "" {
		if data, err := json.Marshal(versionEntry{Path: rt.Path, ID: id, Version: rt.Version}); err == nil {
			_ = fsx.WriteFile(file, data, 0o600, fsx.Volatile) // a cache: losing it costs one --version
		}
	}
	return rt, nil
}

func identity(path string) ([5]int64, bool) {
	st, err := os.Stat(path)
	if err != nil {
		return [5]int64{}, false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return [5]int64{}, false
	}
	return [5]int64{int64(sys.Dev), int64(sys.Ino), st.Size(), st.ModTime().UnixNano(), sys.Ctim.Nano()}, true
}
