package wrapper

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sifkernel/sifkernel/slurm"
)

// Epilog runs as root on every node of a job after it ends: as the job user
// it empties the job directory, releases the job's refs and evicts what
// keep_warm allows; then root removes the (empty) job directory. A job
// directory replaced by a symlink loses only the link. Running it twice
// does nothing the second time. It never fails.
func (e *Env) Epilog(ctx context.Context) error {
	hc, err := slurm.FromEnv(e.LookupEnv)
	log := e.hookLog("epilog", hc.JobID)
	if err != nil {
		log.Errorf("not a job this Epilog can act on: %v; doing nothing", err)
		return nil
	}
	if _, err := os.Lstat(e.Config.Cache.Dir); errors.Is(err, fs.ErrNotExist) {
		return nil // no cache on this node: nothing was made
	}
	dir, err := e.jobDirForCleanup(hc.JobID, log)
	if err != nil {
		log.Errorf("%v", err)
		return nil
	}
	u, uerr := e.LookupUser(hc.UID)
	if uerr != nil {
		u = slurm.User{Name: strings.TrimSpace(hc.User), UID: hc.UID, GID: hc.GID, Home: "/"}
	}
	args := []string{"user-cleanup", "--job", hc.JobID, "--gc"}
	if dir != "" {
		args = append(args, "--job-dir", dir)
	}
	if _, err := e.asUser(ctx, u, hc, time.Minute, args...); err != nil {
		log.Errorf("cleanup as uid %d failed: %v; sweep will retry", hc.UID, err)
	}
	e.removeEmptyJobDir(hc.JobID, log)
	return nil
}

// jobDirForCleanup returns the Prolog's job directory if it is a real
// directory; a symlink put in its place is removed, never followed.
func (e *Env) jobDirForCleanup(job string, log interface{ Warnf(string, ...any) }) (string, error) {
	root, err := os.OpenRoot(e.jobsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer root.Close()
	st, err := root.Lstat(job)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	case err != nil:
		return "", err
	case st.Mode()&fs.ModeSymlink != 0 || !st.IsDir():
		log.Warnf("%s is not a directory (a symlink?); removing it without following it", filepath.Join(e.jobsDir(), job))
		return "", root.Remove(job)
	}
	return filepath.Join(e.jobsDir(), job), nil
}

// removeEmptyJobDir removes jobs/<job> once the user part emptied it.
func (e *Env) removeEmptyJobDir(job string, log interface{ Warnf(string, ...any) }) {
	root, err := os.OpenRoot(e.jobsDir())
	if err != nil {
		return
	}
	defer root.Close()
	err = root.Remove(job)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			log.Warnf("%s is not empty after cleanup; sweep will retry", filepath.Join(e.jobsDir(), job))
			return
		}
		log.Warnf("removing %s: %v", filepath.Join(e.jobsDir(), job), err)
	}
}
