package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sifkernel/sifkernel/wrapper/cache"
	"github.com/sifkernel/sifkernel/wrapper/metrics"
	"github.com/sifkernel/sifkernel/wrapper/node"
	"github.com/sifkernel/sifkernel/wrapper/runas"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
	"github.com/sifkernel/sifkernel/wrapper/untrusted"
)

// ErrNodeFault is a node-level fault a site opted in to failing the Prolog
// on (prolog.fail_node_on). Nothing else makes a hook fail: Slurm drains a
// node whose Prolog or Epilog fails.
var ErrNodeFault = errors.New("node fault")

// Prolog runs as root on every node of a job before it starts: it readies
// the cache root, creates the job directory for the job user, and runs the
// user part as that user. It returns an error only for a node fault the
// site opted in to.
func (e *Env) Prolog(ctx context.Context) error {
	dl := newDeadline(e.Now, e.Config.Prolog.Timeout.Duration)
	ctx, cancel := dl.context(ctx)
	defer cancel()
	hc, err := slurm.FromEnv(e.LookupEnv)
	log := e.hookLog(slurm.Prolog, hc.JobID)
	run := e.startRun(slurm.Prolog)
	defer finished(log, time.Now())
	defer e.count(log, run)
	if err != nil {
		log.Errorf("not a job this Prolog can act on: %v; doing nothing", err)
		run.Fail(metrics.NotAJob)
		return nil
	}
	tree, err := cache.OpenTree(e.Config.Cache.Dir, true)
	if err != nil && userCausable(err) {
		log.Errorf("%v: the job gets no kernels from sifkernel (a full file system is not a node fault)", err)
		run.Fail(metrics.CacheFull)
		return nil
	}
	if err != nil {
		return e.nodeFault(log, run, metrics.CacheRoot, err)
	}
	defer tree.Close()
	dir, err := tree.MakeJobDir(hc.JobID, hc.UID, hc.GID)
	if err != nil && nodeLevel(err) {
		return e.nodeFault(log, run, metrics.CacheRoot, err)
	}
	if err != nil {
		log.Errorf("%s: the job gets no kernels from sifkernel (not a node fault: users' files or jobs can cause it)", untrusted.String(err.Error()))
		run.Fail(metrics.JobDir)
		return nil
	}
	u, err := e.LookupUser(hc.UID)
	if err != nil {
		log.Errorf("%v: the job gets no kernels from sifkernel", err)
		run.Fail(metrics.UserLookup)
		return nil
	}
	stage := e.Config.Prolog.Stage && e.stagesIn(hc.Partition)
	if err := tree.EnsureUserDir(hc.UID, hc.GID); err != nil && stage {
		// The user's own doing (or a uid reused): the user's problem, not the node's.
		log.Warnf("not staging for uid %d: %v", hc.UID, err)
		run.Fail(metrics.UserDir)
		stage = false
	}
	// Room for this job first, when the disk is short (one statfs otherwise).
	e.reclaim(ctx, log, run, tree, min(dl.child(0)/4, prologReclaimLimit), false)
	limit := e.Config.Cache.StageTimeout.Duration
	site := e.site()
	if site != nil && stage {
		if err := tree.EnsureSite(site.user.UID, site.user.GID); err != nil {
			log.Warnf("site cache: %v; every user stages their own", err)
			run.Fail(metrics.SiteDir)
			site = nil
		}
	}
	userPart := func(siteStager bool, siteCopying, cutOff []string) (Report, error) {
		later := 0
		if siteStager {
			later = 2 // the site child, then this user part again
		}
		budget, until := dl.stageBy(limit, later)
		reply, err := e.asUser(ctx, u, hc, dl.child(0), ChildRequest{UserPart: &UserPartOptions{
			Job: hc.JobID, JobDir: dir, Home: u.Home, CreatedBy: slurm.Prolog, Stage: stage, Budget: budget, Until: until,
			SiteStager: siteStager, SiteCopying: siteCopying, CutOff: cutOff}})
		if err == nil && reply.UserPart == nil {
			err = errors.New("it printed no report")
		}
		if err != nil {
			return Report{}, err
		}
		return *reply.UserPart, nil
	}
	rep, err := userPart(site != nil && stage, nil, nil)
	if err != nil {
		log.Errorf("user part as %s failed: %s; the job's kernels use their images in place", u.Name, deadlineNote(err, dl))
		run.Fail(failReason(err, metrics.UserPart))
		return nil
	}
	var siteCopied map[string]bool
	if site != nil && stage {
		// Pinned before anything else may evict them (see stageForJob).
		gone := e.recordSiteRefs(log, tree, site, hc.JobID, rep)
		cutOff := rep.cutOff(e.Config.Kernel.MaxPerJob) // the next job resumes them
		rep, siteCopied = e.stageForJob(ctx, log, run, dl, tree, site, hc.JobID, rep, gone > 0,
			func(copying []string) (Report, error) { return userPart(false, copying, cutOff) })
		if gone := e.recordSiteRefs(log, tree, site, hc.JobID, rep); gone > 0 {
			log.Errorf("site cache: %d of the job's site entries were evicted before the job could pin them; those kernels will not start (raise cache.site_quota)", gone)
			run.Fail(metrics.SiteEvicted)
		}
	}
	e.logReport(log, rep)
	fsSize, _, _ := tree.Filesystem()
	countStaging(run, rep, e.Config.Kernel.MaxPerJob, fsSize, e.Config.Prolog.Timeout.Duration, siteCopied)
	return nil
}

// prologReclaimLimit bounds a Prolog's low-water round (see reclaim), which
// takes at most a quarter of what is left: the job's own staging keeps the rest.
const prologReclaimLimit = 20 * time.Second

// deadlineNote is a child's failure for the log, saying so when it was
// killed (or never started) for the hook's deadline.
func deadlineNote(err error, dl deadline) string {
	msg := untrusted.String(err.Error())
	if errors.Is(err, runas.ErrKilled) || errors.Is(err, runas.ErrNoTime) {
		msg += fmt.Sprintf(" (the hook's deadline, prolog.timeout: %s left)", max(dl.left(), 0).Round(time.Millisecond))
	}
	return msg
}

// failReason is the metrics reason for a child's failure: "deadline" when
// root killed it (or could not start it) for the hook's deadline.
func failReason(err error, otherwise metrics.Reason) metrics.Reason {
	if errors.Is(err, runas.ErrKilled) || errors.Is(err, runas.ErrNoTime) {
		return metrics.Deadline
	}
	return otherwise
}

// nodeLevel says an error making a job directory is the node's own fault:
// its cache file system is read-only, failing or gone. Nothing else is: a
// full file system (blocks or inodes), a quota, a leftover of any kind, a
// job id met again can all come from what users do.
func nodeLevel(err error) bool {
	for _, e := range []syscall.Errno{syscall.EROFS, syscall.EIO, syscall.ENODEV, syscall.ESTALE, syscall.ENOTCONN} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// userCausable says an error from readying the cache root is one users can
// cause by filling its file system.
func userCausable(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// nodeFault logs a node-level fault and fails the hook only if the site opted in.
func (e *Env) nodeFault(log interface{ Errorf(string, ...any) }, run *metrics.Run, fault metrics.Reason, err error) error {
	run.Fail(fault)
	if slices.Contains(e.Config.Prolog.FailNodeOn, string(fault)) {
		log.Errorf("node fault %s: %v; failing (prolog.fail_node_on)", fault, err)
		return fmt.Errorf("%w: %s: %v", ErrNodeFault, fault, err)
	}
	log.Errorf("node fault %s: %v; carrying on without the node cache", fault, err)
	return nil
}

func (e *Env) stagesIn(partition string) bool {
	if len(e.Config.Prolog.Partitions) == 0 {
		return true
	}
	return slurm.MatchPartition(e.Config.Prolog.Partitions, partition)
}

// asUser runs req as the job user (`sifkernel internal ...`) with a
// scrubbed environment and decodes the reply it prints.
func (e *Env) asUser(ctx context.Context, u slurm.User, hc slurm.Context, timeout time.Duration, req ChildRequest) (ChildReply, error) {
	args, err := req.Args()
	if err != nil {
		return ChildReply{}, err
	}
	full := []string{}
	if e.ConfigFile != "" {
		full = append(full, "--config", e.ConfigFile)
	}
	full = append(full, args...)
	// GOMEMLIMIT makes the child's garbage collector work harder rather than
	// let its heap double: with a user's thousand megabyte-long kernels the
	// child peaked at 185 MB without it and 106 MB with it (measured by the
	// hostile-user suite, wrapper/hostile).
	env := []string{"HOME=" + u.Home, "USER=" + u.Name, "LOGNAME=" + u.Name, "SIFKERNEL_LOG_FORMAT=text", "GOMEMLIMIT=48MiB"}
	if e.ConfigDefaults {
		env = append(env, ChildDefaultsEnv+"=1")
	}
	for _, k := range childEnvKeys() {
		if v, ok := e.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	gid := hc.GID
	groups := u.Groups
	if len(groups) == 0 {
		groups = []int{gid}
	}
	if timeout <= 0 {
		return ChildReply{}, runas.ErrNoTime
	}
	res, err := runas.Run(ctx, runas.Cmd{Path: e.childBinary(req), Args: full, UID: hc.UID, GID: gid, Groups: groups, Env: env, Timeout: timeout})
	if err != nil {
		return ChildReply{}, err
	}
	reply, err := decodeChildReply(res.Stdout, req)
	if err != nil {
		kind, _ := req.kind()
		return ChildReply{}, fmt.Errorf("reading the reply of the %s child: %s", kind, untrusted.String(err.Error()))
	}
	return reply, nil
}

// maxLoggedWarnings bounds the report's warnings a hook logs, one a line.
const maxLoggedWarnings = 8

// logReport writes one line per kernel: what it uses and why. A report is
// the job user's to shape (see decodeReport): at most kernel.max_per_job
// kernel lines and maxLoggedWarnings warnings are logged, each string cut,
// and one line counts the rest.
// childEnvKeys are the variables the Prolog passes from its own environment
// to the child it runs as the job user: the job's identity, every variable
// GPU detection reads (node.GPUSignals, the one list of them), the node
// name and the log level. GOCOVERDIR: only a binary built with -cover reads
// it (make cover).
func childEnvKeys() []string {
	keys := append(slurm.IdentityVars(), node.GPUSignals()...)
	return append(keys, "SIFKERNEL_LOG_LEVEL", "GOCOVERDIR")
}

func (e *Env) logReport(log logrus.FieldLogger, r Report) {
	q := untrusted.String
	for i, w := range r.Warnings {
		if i < maxLoggedWarnings {
			log.Warnf("%s", q(w))
		}
	}
	limit := e.Config.Kernel.MaxPerJob
	for i, k := range r.Kernels {
		if i >= limit {
			break
		}
		switch {
		case k.Skipped:
			log.Warnf("kernel %s skipped: %s", q(k.Name), q(k.Reason))
		case k.Site:
			log.Infof("kernel %s uses the site cache's %s (one copy for every user of the node)", q(k.Name), q(k.Image))
		case k.Staged && k.Copied:
			log.WithField("copied_bytes", k.Bytes).Infof("kernel %s uses the staged %s (copied now)%s", q(k.Name), q(k.Image), siteNote(k))
		case k.Staged:
			log.Infof("kernel %s uses the staged %s (already cached)%s", q(k.Name), q(k.Image), siteNote(k))
		default:
			log.Warnf("kernel %s uses %s in place: %s", q(k.Name), q(k.Image), q(k.Reason))
		}
	}
	if r.Over > 0 {
		log.Warnf("%d more container kernels skipped: kernel.max_per_job is %d", min(r.Over, 1<<30), limit)
	}
	unlogged := max(len(r.Kernels)-limit, 0) + r.droppedKernels
	if w := max(len(r.Warnings)-maxLoggedWarnings, 0) + r.droppedWarnings; unlogged > 0 || w > 0 {
		log.Warnf("the user part's report held %d more kernels and %d more warnings than a hook logs (a report past kernel.max_per_job is not sifkernel's: was the child traced?)", unlogged, w)
	}
	log.Infof("%d kernels ready in %s (GPUs: %v, %s)", min(len(r.Kernels), limit), q(r.JobDir), r.GPU.Present, q(r.GPU.Reason))
}

// siteNote is why a staged image is the user's own copy, for the log.
func siteNote(k KernelReport) string {
	if k.SiteNote == "" {
		return ""
	}
	return "; " + untrusted.String(k.SiteNote) + ", so staged for this user alone"
}
