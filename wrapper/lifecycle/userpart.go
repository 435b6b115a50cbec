package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/sifkernel/sifkernel/wrapper/apptainer"
	"github.com/sifkernel/sifkernel/wrapper/cache"
	"github.com/sifkernel/sifkernel/wrapper/fsx"
	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
	"github.com/sifkernel/sifkernel/wrapper/node"
	"github.com/sifkernel/sifkernel/wrapper/runas"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
	"github.com/sifkernel/sifkernel/wrapper/untrusted"
)

// versionCacheFile, in the user's node cache, remembers Apptainer's version
// (see apptainer.Finder.FindCached). Neither an image (.sif), its metadata
// (.json) nor a copy in progress (.tmp-*), so the cache leaves it alone.
const versionCacheFile = "apptainer-version"

// UserPartOptions say what the user part does for one job.
type UserPartOptions struct {
	Job    slurm.JobID   `json:"job"`
	JobDir string        `json:"job_dir"` // exists, owned by the calling user
	Home   string        `json:"home"`
	Stage  bool          `json:"stage"`  // stage images (prolog.stage, prolog.partitions)
	Budget time.Duration `json:"budget"` // for all staging together
	// Until, when set, ends the staging (see stageContext): root's budget
	// as a time, so the child's own start comes out of it.
	Until     time.Time `json:"until,omitzero"`
	CreatedBy string    `json:"created_by"` // prolog, taskprolog, activate or run
	// SiteStager: root runs the site child after this user part, so a
	// site image not yet in the site cache is left to it (SitePending)
	// rather than copied for this user alone.
	SiteStager bool `json:"site_stager,omitempty"`
	// SiteCopying are the images the site child ran out of time on (after
	// SiteStager's user part): used in place, not copied for this user.
	SiteCopying []string `json:"site_copying,omitempty"`
	// CutOff are the images whose copies the first user part of the same
	// Prolog ran out of time on: staged with no time left, so a copy the
	// cache holds by now is used and none is resumed in the second or so a
	// later phase has left (the next job resumes them).
	CutOff []string `json:"cut_off,omitempty"`
}

// KernelReport says what became of one kernel.
type KernelReport struct {
	Name   string `json:"name"`
	Source string `json:"source,omitempty"` // the user's kernel.json
	Image  string `json:"image,omitempty"`  // the image the overlay uses
	Staged bool   `json:"staged"`
	Copied bool   `json:"copied,omitempty"` // this job copied it (a cache miss)
	// Site: the image is the site cache's copy (SiteKey), every user's.
	Site    bool   `json:"site,omitempty"`
	SiteKey string `json:"site_key,omitempty"`
	// SitePending: a site image the site child is to stage (Image is
	// the source until then).
	SitePending bool `json:"site_pending,omitempty"`
	// SiteNote says why a staged image is the user's own copy, with the
	// site cache on (not a site image).
	SiteNote string `json:"site_note,omitempty"`
	// StageSeconds is how long staging took, when this job copied it;
	// TimedOut says it was not staged because cache.stage_timeout passed.
	StageSeconds float64 `json:"stage_seconds,omitempty"`
	TimedOut     bool    `json:"timed_out,omitempty"`
	// Resumed: this job's copy finished what an earlier, cut-off one began.
	Resumed bool     `json:"resumed,omitempty"`
	Bytes   int64    `json:"bytes,omitempty"`  // the image's size, when staged
	Reason  string   `json:"reason,omitempty"` // why it was not staged, or skipped
	Skipped bool     `json:"skipped"`          // no overlay was written
	Changes []string `json:"changes,omitempty"`
}

// Report is the outcome of a user part, also written to node.json.
type Report struct {
	Job       slurm.JobID    `json:"job"`
	JobDir    string         `json:"job_dir"`
	CreatedBy string         `json:"created_by"`
	Node      string         `json:"node"`
	NodeFrom  string         `json:"node_from"` // SLURMD_NODENAME, or hostname where Slurm gave none
	GPU       node.GPU       `json:"gpu"`
	Apptainer string         `json:"apptainer,omitempty"`
	Kernels   []KernelReport `json:"kernels"`
	// Over counts the container kernels past kernel.max_per_job: skipped.
	Over       int       `json:"over_limit,omitempty"`
	Warnings   []string  `json:"warnings,omitempty"` // for the hook's log
	FinishedAt time.Time `json:"finished_at"`

	// What root's decoding of a child's report dropped (see decodeReport).
	droppedKernels, droppedWarnings int
}

// UserPart is the part of every lifecycle that runs as the job user: find
// the user's container kernels, stage their images (most recently used
// first, within the budget), and write overlay kernelspecs into the job
// directory. Problems with one kernel or image are reported, not returned:
// the kernel then uses its source image.
func (e *Env) UserPart(ctx context.Context, o UserPartOptions) (Report, error) {
	node, from := e.nodeName()
	r := Report{Job: o.Job, JobDir: o.JobDir, CreatedBy: o.CreatedBy, Node: node, NodeFrom: from, GPU: e.gpu(), Kernels: []KernelReport{}}
	if r.GPU.Warning != "" {
		r.Warnings = append(r.Warnings, r.GPU.Warning)
	}
	var ch *cache.Cache
	if o.Stage && o.Budget <= 0 {
		// A hook's deadline left no time to copy: the kernels still get
		// written, with their images in place or already cached.
		r.Warnings = append(r.Warnings, "no time left to stage before the hook's deadline (prolog.timeout)")
	}
	if o.Stage {
		var err error
		if ch, err = e.OpenUserCache(0); err != nil {
			r.Warnings = append(r.Warnings, fmt.Sprintf("no staging: %v", err))
		}
	}
	var rt *apptainer.Runtime
	find := e.finder().Find
	if ch != nil { // the user's node cache remembers the runtime's version
		find = func(ctx context.Context) (apptainer.Runtime, error) {
			return e.finder().FindCached(ctx, filepath.Join(ch.Dir(), versionCacheFile))
		}
	}
	if found, err := find(ctx); err == nil {
		rt, r.Apptainer = &found, found.Path
	} else {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%v; kernels keep the Apptainer they name", err))
	}
	p := &userPart{e: e, o: o, ch: ch, rt: rt, kenv: e.kernelEnv(o.Home), gpu: r.GPU, host: r.Node,
		kernelsDir: cache.JobKernels(o.JobDir), site: e.site()}
	if err := os.MkdirAll(p.kernelsDir, 0o755); err != nil {
		return r, fmt.Errorf("creating %s: %w", p.kernelsDir, err)
	}
	stageCtx, cancel := stageContext(ctx, o.Budget, o.Until)
	defer cancel()
	for _, en := range containerKernels(p.kenv, &r, e.Config.Kernel.MaxPerJob) {
		r.Kernels = append(r.Kernels, p.overlayOne(stageCtx, en))
	}
	r.bound()
	r.FinishedAt = e.Now().UTC()
	// node.json says the job's kernels are ready: the TaskProlog and
	// `sifkernel env` take it to mean the Prolog is done. With site images
	// pending, root runs the site child and this user part again, which
	// replaces it; when the deadline leaves no time for that, these kernels
	// (the pending images in place) are the job's. Without it the TaskProlog
	// would take the job for one no Prolog prepared and run the user part
	// itself, copying the site's images into the user's own quota (seen in
	// the VM soak).
	return r, writeJSON(filepath.Join(o.JobDir, cache.JobReport), r)
}

// MaxKernelBytes bounds the kernel.json bytes one user part reads in all:
// a user may have thousands of kernels of a megabyte each.
const MaxKernelBytes = 16 << 20

// containerKernels lists the kernels Jupyter would use that run a container,
// most recently used image first (by the image's access time), at most
// limit of them; Over in the report counts the rest. Kernels that cannot be
// read are reported as skipped, within the same limit.
func containerKernels(kenv kernelspec.Env, r *Report, limit int) []kernelspec.Entry {
	var out []kernelspec.Entry
	for _, en := range kenv.KernelsWithin(MaxKernelBytes) {
		bad := en.Err
		if bad == nil {
			bad = en.LoadErr
		}
		switch {
		case en.ShadowedBy != "":
			continue
		case len(out)+len(r.Kernels) >= limit && (bad != nil || kernelspec.IsContainer(en.Spec)):
			r.Over++
			continue
		case bad != nil:
			// Unreadable, or Jupyter cannot load it: it may have been a
			// container kernel; say so either way.
			r.Kernels = append(r.Kernels, KernelReport{Name: en.Name, Source: en.File(), Skipped: true, Reason: bad.Error()})
			continue
		case !kernelspec.IsContainer(en.Spec):
			continue
		}
		out = append(out, en)
	}
	sort.SliceStable(out, func(i, j int) bool { return imageAtime(out[i]).After(imageAtime(out[j])) })
	return out
}

// maxReportString bounds each string of a report: PATH_MAX for paths, and
// a message no longer than one. The report crosses to root (see runas).
const maxReportString = 4096

// bound cuts every string a user shaped to maxReportString bytes.
func (r *Report) bound() {
	cut := func(s *string) { *s = untrusted.Cut(*s, maxReportString) }
	for i := range r.Kernels {
		k := &r.Kernels[i]
		for _, s := range []*string{&k.Name, &k.Source, &k.Image, &k.Reason, &k.SiteNote} {
			cut(s)
		}
		for j := range k.Changes {
			cut(&k.Changes[j])
		}
	}
	for i := range r.Warnings {
		cut(&r.Warnings[i])
	}
}

func imageAtime(en kernelspec.Entry) time.Time {
	cmd, err := apptainer.Parse(en.Spec.Argv)
	if err != nil {
		return time.Time{}
	}
	st, err := os.Stat(cmd.Image)
	if err != nil {
		return time.Time{}
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return time.Unix(sys.Atim.Sec, sys.Atim.Nsec)
	}
	return st.ModTime()
}

// userPart is what one run of the user part knows while it goes through
// the kernels.
type userPart struct {
	e          *Env
	o          UserPartOptions
	ch         *cache.Cache       // nil: no staging
	rt         *apptainer.Runtime // nil: kernels keep their Apptainer
	kenv       kernelspec.Env
	gpu        node.GPU
	host       string
	kernelsDir string
	site       *siteOn // nil: no site cache
}

func (p *userPart) overlayOne(ctx context.Context, en kernelspec.Entry) KernelReport {
	e, o, ch := p.e, p.o, p.ch
	q := untrusted.String
	kr := KernelReport{Name: en.Name, Source: en.File()}
	log := e.Log.WithField("job", o.Job)
	cmd, err := apptainer.Parse(en.Spec.Argv)
	if err != nil {
		kr.Skipped, kr.Reason = true, err.Error()
		log.Warnf("kernel %s skipped: %s", q(en.Name), q(err.Error()))
		return kr
	}
	image := strings.ReplaceAll(cmd.Image, "{resource_dir}", en.Dir)
	kr.Image, kr.Reason = image, e.stageable(en, image, o, ch)
	if s := p.site; s != nil && o.Stage && wantsStaging(en) && (kr.Reason == "" || ch == nil) && filepath.IsAbs(image) && !strings.Contains(image, "://") {
		if hit, ok := s.lookup(image); ok {
			kr.Image, kr.Staged, kr.Site, kr.SiteKey, kr.Bytes, kr.Reason = hit.Path, true, true, hit.Key, hit.Size, ""
		} else if public, why := s.public(image); public && o.SiteStager {
			kr.SitePending, kr.Reason = true, "left to the site cache (every user may read it)"
		} else if public && slices.Contains(o.SiteCopying, image) {
			// The site child ran out of time on it: its copy is kept, and
			// the next job's Prolog resumes it. A copy for this user alone
			// would be a second one, in her quota.
			kr.Reason = "the site cache's copy was cut off by the Prolog's deadline; the next job on this node resumes it"
		} else if !public {
			kr.SiteNote = why // fsx.ErrNotPublic: "not a site image: ..."
		}
	}
	if kr.Reason == "" && !kr.Staged {
		sctx, cutOff := ctx, slices.Contains(o.CutOff, image)
		if cutOff { // a cached copy only (the cache uses one with no time left); the next job copies
			var cancel context.CancelFunc
			sctx, cancel = stageContext(ctx, 0, time.Time{})
			defer cancel()
		}
		res, err := ch.Stage(sctx, image, o.Job, nil)
		if err != nil {
			kr.Reason, kr.TimedOut = err.Error(), errors.Is(err, cache.ErrTimeout)
			if cutOff && kr.TimedOut {
				kr.Reason = "its copy was cut off by this Prolog's first user part; the next job on this node resumes it"
			}
			log.Warnf("image %s of kernel %s not staged, the kernel uses it in place: %s", q(image), q(en.Name), q(err.Error()))
		} else {
			kr.Image, kr.Staged, kr.Copied, kr.Bytes, kr.Resumed = res.Path, true, res.Copied, res.Bytes, res.Resumed > 0
			if res.Copied {
				kr.StageSeconds = res.Took.Seconds()
			}
		}
	}
	notStaged := ""
	if !kr.Staged {
		notStaged = kr.Reason
	}
	spec, changes, err := kernelspec.Overlay(en.Kernel, kernelspec.OverlayOptions{
		Runtime: p.rt, Image: kr.Image, NotStaged: notStaged, GPU: p.gpu.Present, GPUReason: p.gpu.Reason,
		GPUFlag: e.Config.Apptainer.GPUFlag, DefaultBinds: e.Config.Apptainer.DefaultBinds,
		RuntimeDir: p.kenv.RuntimeDir(), Home: o.Home, NoUserSite: e.Config.Kernel.PythonNoUserSite,
		Job: o.Job.String(), Node: p.host, Version: e.Version,
	})
	if err == nil {
		err = writeOverlay(filepath.Join(p.kernelsDir, en.Name), en.Dir, spec)
	}
	if err != nil {
		kr.Skipped, kr.Reason = true, err.Error()
		log.Warnf("kernel %s: no job copy: %s", q(en.Name), q(err.Error()))
		return kr
	}
	kr.Changes = changes
	return kr
}

// wantsStaging says the kernel does not ask to be left unstaged.
func wantsStaging(en kernelspec.Entry) bool {
	meta, _, _ := en.Spec.Sifkernel()
	return meta.Stage == nil || *meta.Stage
}

// stageable says why an image is not to be staged, or "" if it is.
func (e *Env) stageable(en kernelspec.Entry, image string, o UserPartOptions, ch *cache.Cache) string {
	meta, _, _ := en.Spec.Sifkernel()
	switch {
	case !o.Stage:
		return "staging is off for this job"
	case ch == nil:
		return "the node cache is not usable"
	case meta.Stage != nil && !*meta.Stage:
		return "the kernel asks not to be staged"
	case strings.Contains(image, "://"):
		return "a remote image cannot be staged"
	case !filepath.IsAbs(image):
		return "a relative image path cannot be staged"
	}
	return ""
}

// writeOverlay writes the job copy of a kernel and the small files beside
// its kernel.json (logos, kernel.js) that Jupyter shows with it.
func writeOverlay(dir, from string, spec *kernelspec.Spec) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ents, _ := os.ReadDir(from)
	for _, de := range ents {
		name := de.Name()
		if name == kernelspec.FileName || strings.Contains(name, ".bak-") || !de.Type().IsRegular() {
			continue
		}
		if err := copySmall(filepath.Join(from, name), filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	data, err := spec.Encode()
	if err != nil {
		return fmt.Errorf("encoding %s: %w", filepath.Join(dir, kernelspec.FileName), err)
	}
	return fsx.WriteFile(filepath.Join(dir, kernelspec.FileName), data, kernelspec.FileMode, fsx.Volatile)
}

// copySmall copies a resource file of at most 1 MiB; larger ones are skipped.
// A FIFO or device in the kernel's directory is refused without blocking.
func copySmall(src, dst string) error {
	data, err := fsx.ReadRegular(src, 1<<20, false)
	if err != nil {
		return nil // unreadable resources are not worth failing a kernel for
	}
	return fsx.WriteFile(dst, data, 0o644, fsx.Volatile)
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return fsx.WriteFile(path, append(data, '\n'), 0o600, fsx.Volatile)
}

// ReadReport reads a job directory's node.json.
func ReadReport(jobDir string) (Report, error) {
	var r Report
	data, err := fsx.ReadRegular(filepath.Join(jobDir, cache.JobReport), runas.MaxStdout, true)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("%s: %w", filepath.Join(jobDir, cache.JobReport), err)
	}
	return r, nil
}
