package wrapper

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sifkernel/sifkernel/slurm"
	"github.com/sifkernel/sifkernel/wrapper/cache"
	"github.com/sifkernel/sifkernel/wrapper/fsx"
	"github.com/sifkernel/sifkernel/wrapper/untrusted"
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
// Only directories named by a job id are touched, through the verified
// cache root (cache.OpenTree); at boot (All) it creates the root, so that it
// exists, root's, before slurmd starts. It reports only what it removed.
func (e *Env) Sweep(ctx context.Context, o SweepOptions) (SweepReport, error) {
	r := SweepReport{JobDirs: []string{}, Users: []int{}}
	log := e.hookLog("sweep", "")
	if os.Geteuid() != 0 {
		return r, errors.New("sweep runs as root (it cleans up after every user)")
	}
	run := e.startRun("sweep")
	defer e.count(log, run)
	running := map[string]bool{}
	if !o.All {
		var err error
		if err = fsx.CheckTrustedFile(e.Config.Slurm.Squeue); err != nil {
			run.Fail("squeue")
			return r, fmt.Errorf("not running slurm.squeue as root, so nothing was removed: %w", err)
		}
		if running, err = slurm.RunningJobs(ctx, e.Config.Slurm.Squeue, o.Node, 30*time.Second); err != nil {
			run.Fail("squeue")
			return r, fmt.Errorf("cannot tell which jobs still run, so nothing was removed: %w", err)
		}
	}
	tree, err := cache.OpenTree(e.Config.Cache.Dir, o.All)
	if errors.Is(err, fs.ErrNotExist) {
		log.Infof("no cache root %s: nothing to sweep", e.Config.Cache.Dir)
		return r, nil
	}
	if err != nil {
		// A user's doing (a root made under /tmp before the boot sweep):
		// nothing here may be trusted, so nothing is touched. Sweep, like
		// the hooks, does not fail for what a user did.
		log.Errorf("%v; nothing was removed (remove that directory by hand)", err)
		run.Fail("cache_root")
		return r, nil
	}
	defer tree.Close()
	jobs, err := tree.Jobs()
	errs := []error{err}
	for _, job := range jobs {
		if slurm.ValidJobID(job) != nil || running[job] {
			continue
		}
		removed, err := e.sweepJobDir(ctx, tree, job)
		errs = append(errs, err)
		if removed {
			r.JobDirs = append(r.JobDirs, job)
		}
	}
	users, uerrs := tree.UserDirs()
	errs = append(errs, uerrs...)
	uids := make([]int, 0, len(users))
	for uid := range users {
		uids = append(uids, uid)
	}
	sort.Ints(uids)
	for _, uid := range uids {
		if err := e.sweepUser(ctx, users[uid], running); err != nil {
			errs = append(errs, err)
			continue
		}
		r.Users = append(r.Users, uid)
	}
	// What one user's files did is logged, not returned: sweep, like the
	// hooks, does not fail for a user's doing (it runs again at the next
	// boot or cron round).
	for _, err := range errs {
		if err != nil {
			log.Warnf("%s", untrusted.String(err.Error()))
			run.Fail("leftovers")
		}
	}
	log.Infof("removed %d job directories, swept %d users", len(r.JobDirs), len(r.Users))
	return r, nil
}

// sweepJobDir empties a job directory as its owner, then removes it. It
// says whether the directory is gone.
func (e *Env) sweepJobDir(ctx context.Context, tree *cache.Tree, job string) (bool, error) {
	log := e.hookLog("sweep", job)
	o, found, err := tree.JobDirOwner(job)
	if err != nil || !found {
		return err == nil, err // a link in its place was removed, not followed
	}
	if o.UID != 0 {
		u := e.userOrNumeric(o.UID, o.GID)
		hc := slurm.Context{JobID: job, UID: o.UID, GID: o.GID}
		req := ChildRequest{Cleanup: &CleanupOptions{Job: job, RootJobDir: true}}
		if err := e.asUser(ctx, u, hc, time.Minute, req, nil); err != nil {
			return false, fmt.Errorf("job %s: %w", job, err)
		}
	}
	return e.removeJobDir(tree, job, log), nil
}

func (e *Env) sweepUser(ctx context.Context, o cache.Owner, running map[string]bool) error {
	ids := make([]string, 0, len(running))
	for j := range running {
		ids = append(ids, j)
	}
	req := ChildRequest{Sweep: &UserSweepOptions{Running: ids}}
	u := e.userOrNumeric(o.UID, o.GID)
	if err := e.asUser(ctx, u, slurm.Context{UID: o.UID, GID: u.GID}, time.Minute, req, nil); err != nil {
		return fmt.Errorf("uid %d: %w", o.UID, err)
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

// SweepUser is the user's side of sweep: release the refs of jobs that no
// longer run here, remove the user's job directories of those jobs, and
// remove copies left by stagers that died. Every directory it cannot read
// is reported.
func (e *Env) SweepUser(running map[string]bool) (cache.GCReport, error) {
	ch, err := e.OpenUserCache(0)
	if err != nil {
		return cache.GCReport{}, err
	}
	var errs []error
	readDir := func(dir string) []os.DirEntry {
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		return ents
	}
	gone := map[string]bool{}
	for _, k := range readDir(filepath.Join(ch.Dir(), "refs")) {
		for _, j := range readDir(filepath.Join(ch.Dir(), "refs", k.Name())) {
			if !running[j.Name()] {
				gone[j.Name()] = true
			}
		}
	}
	for _, d := range readDir(filepath.Join(ch.Dir(), "jobs")) {
		job := strings.TrimSuffix(d.Name(), ".lock")
		if slurm.ValidJobID(job) != nil || running[job] {
			continue
		}
		errs = append(errs, removeInside(ch.Dir(), path.Join("jobs", d.Name())))
	}
	jobs := make([]string, 0, len(gone))
	for j := range gone {
		jobs = append(jobs, j)
	}
	r, err := ch.GC(cache.GCOptions{Jobs: jobs, Now: e.Now()})
	if err != nil {
		errs = append(errs, fmt.Errorf("gc: %w", err))
	}
	return r, errors.Join(errs...)
}
