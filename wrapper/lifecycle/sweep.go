package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sifkernel/sifkernel/wrapper/cache"
	"github.com/sifkernel/sifkernel/wrapper/fsx"
	"github.com/sifkernel/sifkernel/wrapper/jobclean"
	"github.com/sifkernel/sifkernel/wrapper/metrics"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
	"github.com/sifkernel/sifkernel/wrapper/untrusted"
)

// SweepOptions say what sweep may assume.
type SweepOptions struct {
	All    bool          // at boot: no job runs here, so everything goes
	Node   string        // this node's Slurm name, for squeue
	Budget time.Duration // for the whole sweep; 0 means DefaultSweepBudget
}

// DefaultSweepBudget bounds a whole sweep: what is left when it runs out is
// logged and left for the next run (cron, the timer, the next boot).
const DefaultSweepBudget = 2 * time.Minute

// Sweep's shape: one child per user, a few at a time, each given at most
// sweepChildTimeout; what a child could not remove, root removes itself.
const (
	sweepParallel     = 4
	sweepChildTimeout = 30 * time.Second
	squeueTimeout     = 30 * time.Second
)

// SweepReport lists what sweep removed.
type SweepReport struct {
	JobDirs []string `json:"job_dirs"`
	Users   []int    `json:"users"`
	Left    int      `json:"left,omitempty"` // leftovers not reached within the budget
}

// Sweep (root; at boot and from cron) removes what jobs that no longer run
// here left behind, since no Epilog runs after a node crash: job directories
// and, as each user, refs and the user's job directories, and stale copies.
// Only directories named by a job id are touched, through the verified
// cache root (cache.OpenTree); at boot (All) it creates the root, so that it
// exists, root's, before slurmd starts. Each user's part runs in one child
// as that user (sweepParallel at a time); whatever a child leaves, because
// it failed, was killed or stalled, root removes itself through
// descriptors, never following a link or crossing a mount. The whole sweep
// is bounded by o.Budget. It reports only what it removed.
func (e *Env) Sweep(ctx context.Context, o SweepOptions) (SweepReport, error) {
	r := SweepReport{JobDirs: []string{}, Users: []int{}}
	log := e.hookLog(slurm.Sweep, slurm.JobID{})
	if os.Geteuid() != 0 {
		return r, errors.New("sweep runs as root (it cleans up after every user)")
	}
	run := e.startRun(slurm.Sweep)
	defer e.count(log, run)
	if o.Budget <= 0 {
		o.Budget = DefaultSweepBudget
	}
	dl := newDeadline(e.Now, o.Budget)
	ctx, cancel := dl.context(ctx)
	defer cancel()
	running := map[slurm.JobID]bool{}
	if !o.All {
		var err error
		if err = fsx.CheckTrustedFile(e.Config.Slurm.Squeue); err != nil {
			run.Fail(metrics.Squeue)
			return r, fmt.Errorf("not running slurm.squeue as root, so nothing was removed: %w", err)
		}
		if running, err = slurm.RunningJobs(ctx, e.Config.Slurm.Squeue, o.Node, dl.child(squeueTimeout)); err != nil {
			run.Fail(metrics.Squeue)
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
		run.Fail(metrics.CacheRoot)
		return r, nil
	}
	defer tree.Close()
	sw := &sweep{e: e, ctx: ctx, dl: dl, budget: o.Budget, tree: tree, running: running, log: log}
	sw.plan()
	sw.runUsers()
	e.sweepSite(ctx, log, dl, tree, running)
	e.reclaim(ctx, log, run, tree, dl.child(0), true)
	r.JobDirs, r.Users, r.Left = sw.removed, sw.swept, sw.left
	sort.Strings(r.JobDirs)
	sort.Ints(r.Users)
	// What one user's files did is logged, not returned: sweep, like the
	// hooks, does not fail for a user's doing (it runs again at the next
	// boot or cron round).
	for _, err := range sw.errs {
		log.Warnf("%s", untrusted.String(err.Error()))
		run.Fail(metrics.Leftovers)
	}
	if sw.more > 0 {
		log.Warnf("%d more problems not logged", sw.more)
	}
	if r.Left > 0 {
		log.Warnf("the sweep budget (%s) ran out: %d leftovers are left for the next run", o.Budget, r.Left)
		run.Fail(metrics.Budget)
	}
	log.Infof("removed %d job directories, swept %d users", len(r.JobDirs), len(r.Users))
	return r, nil
}

// maxSweepErrors is how many problems one sweep logs; the rest are counted.
const maxSweepErrors = 50

// sweep is one run of Sweep: the leftovers found, by owner, and what
// became of them.
type sweep struct {
	e       *Env
	ctx     context.Context
	dl      deadline
	budget  time.Duration
	tree    *cache.Tree
	running map[slurm.JobID]bool
	log     interface{ Warnf(string, ...any) }

	owners  map[int]cache.Owner   // users with a cache directory or a leftover job directory
	jobDirs map[int][]slurm.JobID // leftover job directories, by owner

	mu      sync.Mutex
	removed []string
	swept   []int
	left    int
	errs    []error
	more    int
}

func (s *sweep) fail(err error) {
	if err == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) < maxSweepErrors {
		s.errs = append(s.errs, err)
	} else {
		s.more++
	}
}

// plan lists the leftovers: job directories of jobs that no longer run,
// by owner, and the users whose caches to sweep. What is not a user's
// directory (a link, a file, root's) is removed by root at once.
func (s *sweep) plan() {
	s.owners, s.jobDirs = map[int]cache.Owner{}, map[int][]slurm.JobID{}
	jobs, err := s.tree.Jobs()
	s.fail(err)
	for _, name := range jobs {
		job, err := slurm.ParseJobID(name)
		if err != nil || s.running[job] {
			continue
		}
		o, found, err := s.tree.JobDirOwner(job)
		switch {
		case err == nil && !found: // a link in its place was removed, not followed
			s.removed = append(s.removed, name)
		case err == nil && o.UID != 0:
			s.owners[o.UID] = o
			s.jobDirs[o.UID] = append(s.jobDirs[o.UID], job)
		default: // root's own, or a mount point: root's remover, which crosses nothing
			if rerr := s.tree.RemoveJobTree(job, s.deadline()); rerr != nil {
				s.fail(fmt.Errorf("job %s: %w", job, errors.Join(err, rerr)))
			} else {
				s.removed = append(s.removed, name)
			}
		}
	}
	users, uerrs := s.tree.UserDirs()
	for _, err := range uerrs {
		s.fail(err)
	}
	for uid, o := range users {
		s.owners[uid] = o
	}
}

func (s *sweep) deadline() time.Time {
	d, _ := s.ctx.Deadline()
	return d
}

// runUsers sweeps each user, sweepParallel at a time, until the budget ends.
func (s *sweep) runUsers() {
	uids := make([]int, 0, len(s.owners))
	for uid := range s.owners {
		uids = append(uids, uid)
	}
	sort.Ints(uids)
	sem := make(chan struct{}, sweepParallel)
	var wg sync.WaitGroup
	for _, uid := range uids {
		select {
		case sem <- struct{}{}:
		case <-s.ctx.Done():
		}
		if s.ctx.Err() != nil {
			s.mu.Lock()
			s.left += max(1, len(s.jobDirs[uid]))
			s.mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.user(uid)
		}()
	}
	wg.Wait()
}

// user sweeps one user: the user's own child first, then root for what
// it left.
func (s *sweep) user(uid int) {
	o := s.owners[uid]
	jobs := s.jobDirs[uid]
	u := s.e.userOrNumeric(o.UID, o.GID)
	req := ChildRequest{Sweep: &UserSweepOptions{Running: sortedKeys(s.running), JobDirs: jobs}}
	// A quarter of the budget at most: a child the user stopped must leave
	// root the time to remove what it was to remove.
	timeout := s.dl.child(min(sweepChildTimeout, s.budget/4))
	_, childErr := s.e.asUser(s.ctx, u, slurm.Context{UID: o.UID, GID: u.GID}, timeout, req)
	if childErr != nil {
		s.fail(fmt.Errorf("uid %d: %w; root removes what is left", o.UID, childErr))
		s.fail(s.tree.RemoveUserJobs(uid, s.running, s.deadline()))
	}
	var removed []string
	for _, job := range jobs {
		err := s.tree.RemoveJobDir(job) // emptied by the child: only rmdir is left
		if err != nil {
			err = s.tree.RemoveJobTree(job, s.deadline())
		}
		if err != nil {
			s.fail(fmt.Errorf("job %s: %w", job, err))
			continue
		}
		removed = append(removed, job.String())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removed = append(s.removed, removed...)
	if childErr == nil {
		s.swept = append(s.swept, uid)
	}
}

func sortedKeys(m map[slurm.JobID]bool) []slurm.JobID {
	out := make([]slurm.JobID, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return sortedJobs(out)
}

// userOrNumeric looks a user up, falling back to bare ids for a user the
// system no longer knows (their files still need cleaning).
func (e *Env) userOrNumeric(uid, gid int) slurm.User {
	if u, err := e.LookupUser(uid); err == nil {
		return u
	}
	return slurm.User{Name: strconv.Itoa(uid), UID: uid, GID: gid, Home: "/"}
}

// SweepUser is the user's side of sweep: empty the job directories root
// found of the user's jobs that no longer run here (root removes them
// then), release the refs of those jobs, remove the user's job
// directories of them, and remove copies left by stagers that died. Every
// directory it cannot read is reported.
func (e *Env) SweepUser(o UserSweepOptions) (cache.GCReport, error) {
	running := map[slurm.JobID]bool{}
	for _, j := range o.Running {
		running[j] = true
	}
	var errs []error
	for _, job := range o.JobDirs {
		if !job.IsZero() && !running[job] {
			errs = append(errs, e.emptyRootJobDir(job))
		}
	}
	if !e.hasUserDir() { // nothing else to sweep; and no cache of one's own to make elsewhere
		return cache.GCReport{}, errors.Join(errs...)
	}
	ch, err := e.OpenUserCache(0)
	if err != nil {
		return cache.GCReport{}, errors.Join(append(errs, err)...)
	}
	readDir := func(dir string) []string {
		d, err := os.Open(dir)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			return nil
		}
		defer d.Close()
		names, err := d.Readdirnames(maxSweepNames)
		if err != nil && !errors.Is(err, io.EOF) {
			errs = append(errs, err)
		}
		return names
	}
	gone := map[slurm.JobID]bool{}
	for _, k := range readDir(filepath.Join(ch.Dir(), cache.RefsDir)) {
		for _, n := range readDir(filepath.Join(ch.Dir(), cache.RefsDir, k)) {
			if j, err := slurm.ParseJobID(n); err == nil && !running[j] {
				gone[j] = true
			}
		}
	}
	var stale []slurm.JobID
	for _, n := range readDir(filepath.Join(ch.Dir(), cache.JobsDir)) {
		job, err := slurm.ParseJobID(strings.TrimSuffix(n, ".lock"))
		if err == nil && !running[job] {
			stale = append(stale, job)
		}
	}
	errs = append(errs, jobclean.RemoveJobFiles(ch.Dir(), stale...))
	jobs := make([]slurm.JobID, 0, len(gone))
	for j := range gone {
		jobs = append(jobs, j)
	}
	r, err := ch.GC(cache.GCOptions{Jobs: jobs, Now: e.Now()})
	if err != nil {
		errs = append(errs, fmt.Errorf("gc: %w", err))
	}
	return r, errors.Join(errs...)
}

// maxSweepNames bounds the names one directory read of a sweep takes in.
const maxSweepNames = 100000

// hasUserDir says whether the calling user has a directory in the node
// cache (a user whose jobs staged nothing has none).
func (e *Env) hasUserDir() bool {
	tree, err := cache.OpenTree(e.Config.Cache.Dir, false)
	if err != nil {
		return false
	}
	defer tree.Close()
	return tree.HasUserDir(os.Geteuid())
}
