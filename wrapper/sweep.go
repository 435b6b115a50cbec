package wrapper

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sifkernel/sifkernel/slurm"
)

// SweepOptions say what sweep may assume.
type SweepOptions struct {
	All  bool   // at boot: no job runs here, so everything goes
	Node string // this node's Slurm name, for squeue
}

// SweepReport lists what sweep removed.
type SweepReport struct {
	JobDirs []string `json:"job_dirs"`
	Users   []int    `json:"users"`
}

// Sweep (root; at boot and from cron) removes what jobs that no longer run
// here left behind, since no Epilog runs after a node crash: job directories
// and, as each user, refs and the user's job directories, and stale copies.
// Only directories named by a job id are touched.
func (e *Env) Sweep(ctx context.Context, o SweepOptions) (SweepReport, error) {
	r := SweepReport{JobDirs: []string{}, Users: []int{}}
	log := e.hookLog("sweep", "")
	if os.Geteuid() != 0 {
		return r, errors.New("sweep runs as root (it cleans up after every user)")
	}
	running := map[string]bool{}
	if !o.All {
		var err error
		if running, err = slurm.RunningJobs(ctx, e.Config.Slurm.Squeue, o.Node, 30*time.Second); err != nil {
			return r, fmt.Errorf("cannot tell which jobs still run, so nothing was removed: %w", err)
		}
	}
	var errs []error
	ents, _ := os.ReadDir(e.jobsDir())
	for _, de := range ents {
		job := de.Name()
		if slurm.ValidJobID(job) != nil || running[job] {
			continue
		}
		if err := e.sweepJobDir(ctx, job); err != nil {
			errs = append(errs, err)
			continue
		}
		r.JobDirs = append(r.JobDirs, job)
	}
	users, _ := os.ReadDir(filepath.Join(e.Config.Cache.Dir, "users"))
	for _, de := range users {
		uid, err := strconv.Atoi(de.Name())
		if err != nil || !de.IsDir() {
			continue
		}
		if err := e.sweepUser(ctx, uid, running); err != nil {
			errs = append(errs, err)
			continue
		}
		r.Users = append(r.Users, uid)
	}
	log.Infof("removed %d job directories, swept %d users", len(r.JobDirs), len(r.Users))
	return r, errors.Join(errs...)
}

// sweepJobDir empties a job directory as its owner, then removes it.
func (e *Env) sweepJobDir(ctx context.Context, job string) error {
	log := e.hookLog("sweep", job)
	dir, err := e.jobDirForCleanup(job, log)
	if err != nil || dir == "" {
		return err
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	uid := int(st.Sys().(*syscall.Stat_t).Uid)
	gid := int(st.Sys().(*syscall.Stat_t).Gid)
	if uid != 0 {
		u := e.userOrNumeric(uid, gid)
		hc := slurm.Context{JobID: job, UID: uid, GID: gid}
		if _, err := e.asUser(ctx, u, hc, time.Minute, "user-cleanup", "--job", job, "--job-dir", dir); err != nil {
			return fmt.Errorf("job %s: %w", job, err)
		}
	}
	e.removeEmptyJobDir(job, log)
	return nil
}

func (e *Env) sweepUser(ctx context.Context, uid int, running map[string]bool) error {
	dir := filepath.Join(e.Config.Cache.Dir, "users", strconv.Itoa(uid))
	st, err := os.Lstat(dir)
	if err != nil || !st.IsDir() || int(st.Sys().(*syscall.Stat_t).Uid) != uid || uid == 0 {
		return err
	}
	ids := make([]string, 0, len(running))
	for j := range running {
		ids = append(ids, j)
	}
	sort.Strings(ids)
	args := []string{"user-sweep", "--running", strings.Join(ids, ",")}
	u := e.userOrNumeric(uid, int(st.Sys().(*syscall.Stat_t).Gid))
	_, err = e.asUser(ctx, u, slurm.Context{UID: uid, GID: u.GID}, time.Minute, args...)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("uid %d: %w", uid, err)
	}
	return nil
}

// userOrNumeric looks a user up, falling back to bare ids for a user the
// system no longer knows (their files still need cleaning).
func (e *Env) userOrNumeric(uid, gid int) slurm.User {
	if u, err := e.LookupUser(uid); err == nil {
		return u
	}
	return slurm.User{Name: strconv.Itoa(uid), UID: uid, GID: gid, Home: "/"}
}
