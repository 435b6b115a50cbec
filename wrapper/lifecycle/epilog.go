package lifecycle

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"time"

	"github.com/sifkernel/sifkernel/wrapper/cache"
	"github.com/sifkernel/sifkernel/wrapper/metrics"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
	"github.com/sifkernel/sifkernel/wrapper/untrusted"
)

// Epilog runs as root on every node of a job after it ends: as the job user
// it empties the job directory, releases the job's refs and evicts what
// keep_warm allows; then root removes the (empty) job directory. The cache
// root is verified first and used only through its descriptors; one that
// fails the check is not touched. Running it twice does nothing the second
// time. It fails only for a node fault the site opted in to.
func (e *Env) Epilog(ctx context.Context) error {
	dl := newDeadline(e.Now, e.Config.Prolog.Timeout.Duration)
	ctx, cancel := dl.context(ctx)
	defer cancel()
	hc, err := slurm.FromEnv(e.LookupEnv)
	log := e.hookLog(slurm.Epilog, hc.JobID)
	run := e.startRun(slurm.Epilog)
	defer finished(log, time.Now())
	defer e.count(log, run)
	if err != nil {
		log.Errorf("not a job this Epilog can act on: %v; doing nothing", err)
		run.Fail(metrics.NotAJob)
		return nil
	}
	tree, err := cache.OpenTree(e.Config.Cache.Dir, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no cache on this node: nothing was made
	}
	if err != nil {
		return e.nodeFault(log, run, metrics.CacheRoot, err)
	}
	defer tree.Close()
	owner, found, err := tree.JobDirOwner(hc.JobID)
	if err != nil {
		log.Errorf("%v", err)
		run.Fail(metrics.JobDir)
	}
	if found && owner.UID != hc.UID {
		log.Errorf("%s belongs to uid %d, not to the job's uid %d; leaving it to sweep", tree.JobDir(hc.JobID), owner.UID, hc.UID)
		run.Fail(metrics.JobDirOwner)
		found = false
	}
	// The cleanup child asks nothing of the name service: it runs as the
	// job's uid and gid as Slurm gives them, with no other groups (it
	// touches only the user's own files) and home "/" (it reads the site's
	// config alone). The lookup, through NSS (LDAP or SSSD on a site), was
	// a tenth of the Epilog's own time here.
	u := slurm.User{Name: strings.TrimSpace(hc.User), UID: hc.UID, GID: hc.GID, Home: "/"}
	req := ChildRequest{Cleanup: &CleanupOptions{Job: hc.JobID, RootJobDir: found, GC: true}}
	// The child removes within cleanupBudget; phaseReserve is its start and reply.
	if _, err := e.asUser(ctx, u, hc, dl.child(cleanupBudget+phaseReserve), req); err != nil {
		log.Errorf("cleanup as uid %d failed: %s; root removes the job directory itself", hc.UID, deadlineNote(err, dl))
		run.Fail(failReason(err, metrics.Cleanup))
	}
	if found && !e.removeJobDir(tree, hc.JobID, log, dl) {
		run.Fail(metrics.JobDir)
	}
	e.releaseSite(ctx, log, dl, tree, hc.JobID)
	e.reclaim(ctx, log, run, tree, dl.child(0), false)
	return nil
}

// removeJobDir removes jobs/<job> once the user's side emptied it; what
// the user's side left (it failed, was killed, or the job made what its
// user cannot remove), root removes through descriptors, without following
// a link or crossing a mount (see cache.Tree.RemoveJobTree).
func (e *Env) removeJobDir(t *cache.Tree, job slurm.JobID, log interface{ Warnf(string, ...any) }, dl deadline) bool {
	if t.RemoveJobDir(job) == nil {
		return true
	}
	err := t.RemoveJobTree(job, dl.now().Add(min(rootRemoveBudget, dl.child(0))))
	if err != nil {
		log.Warnf("%s; sweep will retry", untrusted.String(err.Error()))
	}
	return err == nil
}

// rootRemoveBudget bounds how long a hook's root removes a job directory.
const rootRemoveBudget = 20 * time.Second
