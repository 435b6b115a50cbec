package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sifkernel/sifkernel/wrapper/cache"
	"github.com/sifkernel/sifkernel/wrapper/fsx"
	"github.com/sifkernel/sifkernel/wrapper/metrics"
	"github.com/sifkernel/sifkernel/wrapper/runas"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
	"github.com/sifkernel/sifkernel/wrapper/untrusted"
)

// The site cache (see cache.SiteDir): one copy per node of an image the
// site published for every user (fsx.OpenSiteImage), made by the site user in a child root starts and never
// by root or a job user, shared by every user's jobs.

// SiteStageOptions is the site child's request: the images to stage, as
// job users named them (the child decides, as the site user, which of
// them are the site's own), within a budget.
type SiteStageOptions struct {
	Images []string      `json:"images"`
	Budget time.Duration `json:"budget"`
	Until  time.Time     `json:"until,omitzero"` // as UserPartOptions.Until
	GC     bool          `json:"gc,omitempty"`   // evict what no job uses and keep_warm allows, first
	// Dirs: Images may name directories (cache warm), each standing for
	// its *.sif, and taken only if the site owns it (fsx.OpenSiteDir).
	Dirs bool `json:"dirs,omitempty"`
}

// SiteResult is what became of one image in the site child.
type SiteResult struct {
	Image  string `json:"image"`
	Key    string `json:"key,omitempty"`
	Staged bool   `json:"staged"`
	Copied bool   `json:"copied,omitempty"`
	// Resumed: the copy finished what an earlier, cut-off one began.
	Resumed bool   `json:"resumed,omitempty"`
	Bytes   int64  `json:"bytes,omitempty"`
	Reason  string `json:"reason,omitempty"` // why not
	// TimedOut: not staged for the budget; what was copied is kept.
	TimedOut bool `json:"timed_out,omitempty"`
}

// SiteReport is the site child's reply.
type SiteReport struct {
	Results []SiteResult `json:"results"`
	Evicted []string     `json:"evicted,omitempty"`
}

// siteGCTimeout bounds the site child's eviction run, within a hook's deadline.
const siteGCTimeout = 30 * time.Second

// maxSiteImages bounds the images one site child takes; its report holds
// at most maxSiteReport results (a warm-up's refused directories too).
const (
	maxSiteImages = 256
	maxSiteReport = 2*maxSiteImages + 1
)

// siteUser is the identity site images are staged as: cache.site_user, or
// nobody where the configured "sifkernel" does not exist. Never root.
func (e *Env) siteUser() (slurm.User, error) {
	name := e.Config.Cache.SiteUser
	u, err := slurm.LookupUserName(name)
	if err != nil && name == "sifkernel" {
		u, err = slurm.LookupUserName("nobody")
	}
	if err == nil && u.UID == 0 {
		err = fmt.Errorf("cache.site_user %s is root", name)
	}
	return u, err
}

// siteOn is the site cache's place for this run, or nil when it is off or
// has no user.
type siteOn struct {
	root   string
	user   slurm.User
	dirs   []string
	owners []int // cache.site_owners' uids; root is always one
}

// childUser is the site user as its children run: its own group alone (it
// reads what others may, no more), and no home.
func childUser(site slurm.User) slurm.User {
	site.Groups, site.Home = []int{site.GID}, "/"
	return site
}

func (e *Env) site() *siteOn {
	if !e.Config.Cache.Site {
		return nil
	}
	u, err := e.siteUser()
	if err != nil {
		return nil
	}
	return &siteOn{root: e.Config.Cache.Dir, user: u, dirs: e.Config.Cache.SiteDirs, owners: e.siteOwners()}
}

// siteOwners are cache.site_owners' uids; a name the user database does
// not know is left out (it owns nothing, then).
func (e *Env) siteOwners() []int {
	var uids []int
	for _, name := range e.Config.Cache.SiteOwners {
		if u, err := slurm.LookupUserName(name); err == nil {
			uids = append(uids, u.UID)
		}
	}
	return uids
}

// lookup finds image's site entry, as the calling user.
func (s *siteOn) lookup(image string) (cache.SiteHit, bool) {
	hit, ok, err := cache.LookupSite(s.root, s.user.UID, image)
	return hit, ok && err == nil
}

// public says whether image is one the site cache would take: one of the
// site's own (fsx.OpenSiteImage; under cache.site_dirs, if set). Only a
// hint for the job user's side: the site child decides again, as the site
// user.
func (s *siteOn) public(image string) (bool, string) {
	f, real, err := fsx.OpenSiteImage(image, s.owners)
	if err != nil {
		return false, err.Error()
	}
	_ = f.Close()
	if !cache.InSiteDirs(real, s.dirs) {
		return false, "not under cache.site_dirs"
	}
	return true, ""
}

// openSiteCache opens the site cache as the site user, sharing images of
// owners (cache.site_owners' uids; nil for a child that stages nothing).
func (e *Env) openSiteCache(owners []int) (*cache.Cache, error) {
	c := e.Config.Cache
	return cache.Open(cache.Options{Root: c.Dir, Site: true, SiteDirs: c.SiteDirs, SiteOwners: owners, Quota: c.SiteQuota, Reserve: c.Reserve,
		KeepWarm: c.SiteKeepWarm.Duration, StageTimeout: c.StageTimeout.Duration, Verify: c.Verify, Streams: c.Streams(), Log: e.Log})
}

// SiteStage is the site child: as the site user, stage each image every
// user could read into the site cache (cache.Options.Site), within the
// budget, after evicting what keep_warm no longer keeps when asked.
func (e *Env) SiteStage(ctx context.Context, o SiteStageOptions) (SiteReport, error) {
	r := SiteReport{Results: []SiteResult{}}
	owners := e.siteOwners() // one look-up of the names for the run
	ch, err := e.openSiteCache(owners)
	if err != nil {
		return r, err
	}
	if o.GC {
		gc, err := ch.GC(cache.GCOptions{Now: e.Now()})
		r.Evicted = gc.Entries
		if err != nil {
			return r, fmt.Errorf("site gc: %w", err)
		}
	}
	ctx, cancel := stageContext(ctx, o.Budget, o.Until)
	defer cancel()
	images := o.Images
	if o.Dirs {
		images = expandSiteDirs(o.Images, owners, &r)
	}
	for i, img := range images {
		if i >= maxSiteImages {
			r.Results = append(r.Results, SiteResult{Image: fmt.Sprintf("%d more images", len(images)-i),
				Reason: fmt.Sprintf("one run takes at most %d", maxSiteImages)})
			break
		}
		res := SiteResult{Image: untrusted.Cut(img, maxReportString)}
		if ctx.Err() != nil {
			res.Reason, res.TimedOut = "the budget ran out", true
			r.Results = append(r.Results, res)
			continue
		}
		st, err := ch.Stage(ctx, img, slurm.JobID{}, nil)
		res.Key, res.Bytes = st.Key, st.Bytes
		if err != nil {
			res.Reason, res.TimedOut = err.Error(), errors.Is(err, cache.ErrTimeout)
		} else {
			res.Staged, res.Copied, res.Resumed = true, st.Copied, st.Resumed > 0
		}
		r.Results = append(r.Results, res)
	}
	return r, nil
}

// expandSiteDirs gives the images named, each directory among them (the
// site's own: fsx.OpenSiteDir) standing for the *.sif in it, in name
// order. A directory the site does not own is not read at all (not even
// its names: it may be a link to a user's private one) and is reported as
// not taken. It runs as the site user, through descriptors.
func expandSiteDirs(names []string, owners []int, r *SiteReport) []string {
	var images []string
	for _, n := range names {
		d, real, err := fsx.OpenSiteDir(n, owners)
		if errors.Is(err, syscall.ENOTDIR) {
			images = append(images, n) // a file: the stager decides
			continue
		}
		if err != nil {
			if len(r.Results) < maxSiteImages {
				r.Results = append(r.Results, SiteResult{Image: untrusted.Cut(n, maxReportString), Reason: err.Error()})
			}
			continue
		}
		ents, err := d.ReadDir(maxSiteImages * 4)
		_ = d.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			r.Results = append(r.Results, SiteResult{Image: untrusted.Cut(n, maxReportString), Reason: err.Error()})
			continue
		}
		var sifs []string
		for _, ent := range ents {
			if ent.Type().IsRegular() && strings.HasSuffix(ent.Name(), ".sif") {
				sifs = append(sifs, filepath.Join(real, ent.Name()))
			}
		}
		sort.Strings(sifs)
		images = append(images, sifs...)
	}
	return images
}

// runSite runs the site child as the site user; root prepares site/ first.
func (e *Env) runSite(ctx context.Context, tree *cache.Tree, s *siteOn, o SiteStageOptions, timeout time.Duration) (SiteReport, error) {
	if err := tree.EnsureSite(s.user.UID, s.user.GID); err != nil {
		return SiteReport{}, err
	}
	u := childUser(s.user)
	reply, err := e.asUser(ctx, u, slurm.Context{UID: u.UID, GID: u.GID}, timeout, ChildRequest{SiteStage: &o})
	if err == nil && reply.SiteStage == nil {
		err = errors.New("it printed no report")
	}
	if err != nil {
		return SiteReport{}, err
	}
	return *reply.SiteStage, nil
}

// minSiteStage is the least staging time the site child is started for.
const minSiteStage = time.Second

// stageForJob is the Prolog's site step: the images the user part left to
// the site cache are staged by the site child, and the user part runs again
// to use them. It returns the report the job ends with.
//
// The Prolog has pinned the entries the first user part found (hits) before
// this runs, and gone says some of them were evicted first: the user part
// then runs again even with nothing for the site child. What the site
// child staged is pinned as soon as it reports, before the user part runs
// again and uses it.
func (e *Env) stageForJob(ctx context.Context, log logrus.FieldLogger, run *metrics.Run, dl deadline, tree *cache.Tree, s *siteOn,
	job slurm.JobID, rep Report, gone bool, again func(siteCopying []string) (Report, error)) (Report, map[string]bool) {
	copied := map[string]bool{}
	var pending []string
	for i, k := range rep.Kernels {
		if i < e.Config.Kernel.MaxPerJob && k.SitePending && !slices.Contains(pending, k.Image) {
			pending = append(pending, k.Image)
		}
	}
	if len(pending) == 0 && !gone {
		return rep, copied
	}
	if len(pending) == 0 {
		next, err := again(nil)
		if err != nil {
			log.Errorf("the user part, after a site entry it found was evicted: %s; the job's kernels use their images in place", deadlineNote(err, dl))
			run.Fail(failReason(err, metrics.UserPart))
			return rep, copied
		}
		return next, copied
	}
	// One phase after the site child: the user part again.
	budget, until := dl.stageBy(e.Config.Cache.StageTimeout.Duration, 1)
	if budget < minSiteStage && !gone {
		// Two children's starts for less than a second of copying: the
		// first user part's kernels stand, those images in place, and a
		// later job's Prolog stages them (the soak saw the user part after
		// such a site child killed at the deadline on a congested link).
		log.Warnf("site cache: %s left to copy, under %s: not staging %d site images in this Prolog; the job uses them in place, a later job's Prolog stages them",
			budget.Round(time.Millisecond), minSiteStage, len(pending))
		for i := range rep.Kernels {
			if k := &rep.Kernels[i]; k.SitePending {
				k.TimedOut, k.Reason = true, "the Prolog had no time left for the site cache; a later job's Prolog stages it"
			}
		}
		return rep, copied
	}
	sr, err := e.runSite(ctx, tree, s, SiteStageOptions{Images: pending, Budget: budget, Until: until}, dl.child(0))
	var copying []string // what the site child ran out of time on
	if err != nil {
		// The user part runs again all the same and writes node.json. Out
		// of time, the child's copies are kept for the next job's Prolog:
		// the images are used in place, not copied once more for this user
		// alone; otherwise it stages per user what the site cache lacks.
		then := "the images are staged per user"
		if errors.Is(err, runas.ErrKilled) || errors.Is(err, runas.ErrNoTime) {
			copying, then = pending, "the job uses those images in place"
		}
		log.Errorf("site cache: the site user's child failed: %s; %s", deadlineNote(err, dl), then)
		run.Fail(failReason(err, metrics.SiteChild))
	}
	for _, r := range sr.Results {
		if r.Copied && r.Key != "" {
			copied[r.Key] = true
			if r.Resumed {
				run.Resumed++
			}
			log.WithField("copied_bytes", r.Bytes).Infof("site cache: %s staged as %s for every user of the node", untrusted.String(r.Image), untrusted.String(r.Key))
		}
		if !r.Staged {
			log.Warnf("site cache: %s not staged: %s", untrusted.String(r.Image), untrusted.String(r.Reason))
		}
		if r.TimedOut && slices.Contains(pending, r.Image) {
			copying = append(copying, r.Image)
		}
		if r.Staged && r.Key != "" && slices.Contains(pending, r.Image) {
			if err := tree.AddSiteRef(r.Key, job, s.user.UID); err != nil {
				log.Warnf("site cache: %s", untrusted.String(err.Error()))
			}
		}
	}
	next, err := again(copying)
	if err != nil {
		log.Errorf("the user part, after the site cache: %s; the job's kernels use their images in place", deadlineNote(err, dl))
		run.Fail(failReason(err, metrics.UserPart))
		return rep, copied
	}
	return carryCopies(rep, next), copied
}

// carryCopies gives the second user part's report what the first one's
// copies were: the second finds in the cache what the first copied (a
// hit), but the job's Prolog made that copy, and the counters and log
// say so.
func carryCopies(first, second Report) Report {
	for i, k := range second.Kernels {
		j := slices.IndexFunc(first.Kernels, func(f KernelReport) bool { return f.Name == k.Name })
		if j < 0 || !k.Staged || k.Copied || k.Site {
			continue
		}
		if f := first.Kernels[j]; f.Copied && f.Image == k.Image {
			second.Kernels[i].Copied, second.Kernels[i].Resumed, second.Kernels[i].StageSeconds = true, f.Resumed, f.StageSeconds
		}
	}
	return second
}

// recordSiteRefs pins, as root, the site entries the job's kernels use, and
// says how many were evicted before their pin was recorded (see
// cache.Tree.AddSiteRef): a kernel must not count on one of those.
func (e *Env) recordSiteRefs(log logrus.FieldLogger, tree *cache.Tree, s *siteOn, job slurm.JobID, rep Report) int {
	gone := 0
	for i, k := range rep.Kernels {
		if i >= e.Config.Kernel.MaxPerJob {
			break
		}
		if !k.Site {
			continue
		}
		err := tree.AddSiteRef(k.SiteKey, job, s.user.UID)
		if errors.Is(err, cache.ErrSiteEntryGone) {
			gone++
		}
		if err != nil {
			log.Warnf("site cache: %s", untrusted.String(err.Error()))
		}
	}
	return gone
}

// releaseSite drops the job's site refs, as root, and when it used any,
// has the site child evict what no job uses and site_keep_warm lets go.
func (e *Env) releaseSite(ctx context.Context, log logrus.FieldLogger, dl deadline, tree *cache.Tree, job slurm.JobID) {
	s := e.site()
	used, err := tree.ReleaseSiteRefs(job)
	if err != nil {
		log.Warnf("site cache refs: %v", err)
	}
	if len(used) == 0 || s == nil || !e.siteGCDue(log, tree, s) {
		return
	}
	sr, err := e.runSite(ctx, tree, s, SiteStageOptions{GC: true}, dl.child(siteGCTimeout))
	if err != nil {
		log.Warnf("site cache gc: %s", deadlineNote(err, dl))
		return
	}
	if n := len(sr.Evicted); n > 0 { // the child's words: a count and the first few
		shown := sr.Evicted[:min(n, 5)]
		for i, k := range shown {
			shown[i] = untrusted.String(k)
		}
		log.Infof("site cache: evicted %d: %s", n, strings.Join(shown, ", "))
	}
	if err := tree.CleanSiteRefs(s.user.UID); err != nil {
		log.Warnf("site cache refs: %v", err)
	}
}

// siteGCDue says the site child's gc has something to do (see
// cache.Tree.SiteGCDue); when root cannot tell, it runs the child.
func (e *Env) siteGCDue(log logrus.FieldLogger, tree *cache.Tree, s *siteOn) bool {
	due, err := tree.SiteGCDue(s.user.UID, e.Config.Cache.SiteKeepWarm.Duration, e.Now())
	if err != nil {
		log.Warnf("site cache: %s; running its gc all the same", untrusted.String(err.Error()))
		return true
	}
	return due
}

// SiteLookup is what `stage` and the TaskProlog ask: the site entry for
// image, or why the site cache does not hold it ("" when it is off).
func (e *Env) SiteLookup(image string) (cache.SiteHit, bool, string) {
	s := e.site()
	if s == nil {
		return cache.SiteHit{}, false, ""
	}
	if _, err := os.Lstat(cache.SiteDir(s.root)); err != nil {
		return cache.SiteHit{}, false, "" // no site cache on this node (no root hook made one)
	}
	if hit, ok := s.lookup(image); ok {
		return hit, true, ""
	}
	if ok, why := s.public(image); !ok {
		return cache.SiteHit{}, false, why + ": staged for you alone"
	}
	return cache.SiteHit{}, false, "a site image not yet in the site cache (a root Prolog or `sifkernel cache warm` puts it there): staged for you alone"
}

// SiteView is the site cache as any user may read it, for `cache ls`;
// nil when it is off or not on this node.
func (e *Env) SiteView() *cache.Cache {
	s := e.site()
	if s == nil {
		return nil
	}
	c, err := cache.OpenSiteView(s.root, s.user.UID)
	if err != nil {
		return nil
	}
	return c
}

// Warm stages images (cache.prefetch when none are given; a directory
// stands for its *.sif) into the site cache, as root through the site
// child, within cache.prefetch_budget.
func (e *Env) Warm(ctx context.Context, images []string) (SiteReport, error) {
	if os.Geteuid() != 0 {
		return SiteReport{}, errors.New("cache warm runs as root (it starts the site user's child)")
	}
	s := e.site()
	if s == nil {
		return SiteReport{}, errors.New("the site cache is off (cache.site) or cache.site_user does not exist")
	}
	if len(images) == 0 {
		images = e.Config.Cache.Prefetch
	}
	if len(images) == 0 {
		return SiteReport{Results: []SiteResult{}}, nil
	}
	// Root neither stats nor lists what it was given: a directory a user
	// controls (or a link to one's private directory) is the site child's
	// to refuse, as the site user, through descriptors.
	all := images
	tree, err := cache.OpenTree(e.Config.Cache.Dir, true)
	if err != nil {
		return SiteReport{}, err
	}
	defer tree.Close()
	// cache.prefetch_budget is the warm-up's deadline, as prolog.timeout is
	// a Prolog's: the child and its copies get what is left of it.
	dl := newDeadline(e.Now, e.Config.Cache.PrefetchBudget.Duration)
	ctx, cancel := dl.context(ctx)
	defer cancel()
	budget, until := dl.stageBy(0, 0)
	return e.runSite(ctx, tree, s, SiteStageOptions{Images: all, Budget: budget, Until: until, Dirs: true}, dl.child(0))
}

// sweepSite drops the site refs of jobs that no longer run, as root, and
// has the site child evict what is then unused past site_keep_warm.
func (e *Env) sweepSite(ctx context.Context, log logrus.FieldLogger, dl deadline, tree *cache.Tree, running map[slurm.JobID]bool) {
	s := e.site()
	touched, err := tree.ReleaseStaleSiteRefs(running)
	if err != nil {
		log.Warnf("site cache refs: %v", err)
	}
	if s == nil || len(touched) == 0 || !e.siteGCDue(log, tree, s) {
		return
	}
	if _, err := e.runSite(ctx, tree, s, SiteStageOptions{GC: true}, dl.child(siteGCTimeout)); err != nil {
		log.Warnf("site cache gc: %s", deadlineNote(err, dl))
	}
	if err := tree.CleanSiteRefs(s.user.UID); err != nil {
		log.Warnf("site cache refs: %v", err)
	}
}
