package kernelspec

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sifkernel/sifkernel/wrapper/apptainer"
)

// OverlayOptions are the facts of one job on one node.
type OverlayOptions struct {
	Runtime      *apptainer.Runtime // the Apptainer found on this node; nil keeps argv[0]
	Image        string             // the image to use: the staged copy or the source
	NotStaged    string             // why the source is used, if it is
	GPU          bool               // the job has NVIDIA GPUs
	GPUReason    string
	GPUFlag      string   // "--nv"
	DefaultBinds []string // apptainer.default_binds
	RuntimeDir   string   // where Jupyter writes connection files
	Home         string
	NoUserSite   bool // kernel.python_no_user_site
	Job, Node    string
	Version      string            // sifkernel's
	Exists       func(string) bool // nil: os.Stat finds it
}

// Overlay rewrites a container kernel for this job on this node (DESIGN.md,
// "Rewriting a container kernel"): every flag the user wrote is kept; the
// runtime, image, GPU flag, binds and PYTHONNOUSERSITE are adjusted, and
// metadata.sifkernel.overlay records why. It returns the new spec and one
// line per change, for people.
func Overlay(k *Kernel, o OverlayOptions) (*Spec, []string, error) {
	if k.Spec == nil {
		return nil, nil, fmt.Errorf("%s: %w", k.File(), k.Err)
	}
	spec := cloneSpec(k.Spec)
	cmd, err := apptainer.Parse(spec.Argv)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", k.File(), err)
	}
	meta, _, err := spec.Sifkernel()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", k.File(), err)
	}
	if o.Exists == nil {
		o.Exists = func(p string) bool { _, err := os.Stat(p); return err == nil }
	}
	var changes []string
	note := func(format string, args ...any) { changes = append(changes, fmt.Sprintf(format, args...)) }
	source := cmd.Image
	if o.Runtime != nil && cmd.Runtime != o.Runtime.Path {
		note("apptainer: %s -> %s (found here by %s)", cmd.Runtime, o.Runtime.Path, o.Runtime.Rule)
		cmd.Runtime = o.Runtime.Path
	}
	if o.Image != "" && o.Image != cmd.Image {
		note("image: %s -> %s (node-local copy)", cmd.Image, o.Image)
		cmd.Image = o.Image
	} else if o.NotStaged != "" {
		note("image: %s kept (not staged: %s)", cmd.Image, o.NotStaged)
	}
	overlayGPU(cmd, meta.GPU, o, note)
	overlayBinds(cmd, o, note)
	if o.NoUserSite && (meta.PythonNoUserSite == nil || *meta.PythonNoUserSite) &&
		strings.EqualFold(spec.Language, "python") && !hasNoUserSite(spec, cmd) {
		cmd.Add("--env", "PYTHONNOUSERSITE=1")
		note("added --env PYTHONNOUSERSITE=1: packages in ~/.local stay out of the container")
	}
	spec.Argv = cmd.Argv()
	rt, ver := cmd.Runtime, ""
	if o.Runtime != nil {
		ver = o.Runtime.Version
	}
	staged := ""
	if o.NotStaged == "" && o.Image != source {
		staged = o.Image
	}
	meta.Overlay = &Provenance{
		Of: k.File(), Job: o.Job, Node: o.Node, SourceImage: source, StagedImage: staged, NotStaged: o.NotStaged,
		GPU: cmd.Has(gpuFlag(o.GPUFlag)), GPUReason: o.GPUReason, Apptainer: rt, ApptainerVersion: ver, SifkernelVersion: o.Version,
	}
	if err := spec.SetSifkernel(meta); err != nil {
		return nil, nil, err
	}
	return spec, changes, nil
}

func gpuFlag(f string) string {
	if f == "" {
		return "--nv"
	}
	return f
}

// overlayGPU applies the kernel's GPU policy: always, never, or (auto, the
// default, also for adopted hand-written kernels) as the node decided.
func overlayGPU(cmd *apptainer.Command, policy string, o OverlayOptions, note func(string, ...any)) {
	flag := gpuFlag(o.GPUFlag)
	want := policy == GPUAlways || (policy != GPUNever && o.GPU)
	why := fmt.Sprintf("gpu policy %s", policyOr(policy))
	if policy != GPUAlways && policy != GPUNever {
		why += ": " + o.GPUReason
	}
	switch has := cmd.Has(flag); {
	case want && !has:
		cmd.Add(flag, "")
		note("added %s (%s)", flag, why)
	case !want && has:
		cmd.Remove(flag)
		note("removed %s (%s)", flag, why)
	}
}

func policyOr(p string) string {
	if p == "" {
		return GPUAuto
	}
	return p
}

// overlayBinds adds the configured default binds whose source exists here,
// drops those whose source does not (Apptainer refuses a missing source),
// and binds the connection file's directory if the container cannot see it.
func overlayBinds(cmd *apptainer.Command, o OverlayOptions, note func(string, ...any)) {
	for _, b := range o.DefaultBinds {
		src, _, _ := strings.Cut(b, ":")
		if o.Exists(src) {
			if !bound(cmd, src) {
				cmd.Add("--bind", b)
				note("added --bind %s (a default bind; it exists on this node)", b)
			}
			continue
		}
		if dropBind(cmd, src) {
			note("dropped the bind of %s: it does not exist on this node", src)
		}
	}
	if rt := o.RuntimeDir; rt != "" && !cmd.Sees(rt, o.Home) {
		cmd.Add("--bind", rt)
		note("added --bind %s so the kernel can read its connection file", rt)
	}
}

func bound(cmd *apptainer.Command, src string) bool {
	for _, b := range cmd.Binds() {
		if filepath.Clean(b.Src) == filepath.Clean(src) {
			return true
		}
	}
	return false
}

// dropBind removes every bind of src from --bind flags, keeping the others
// a flag lists; a flag left empty goes.
func dropBind(cmd *apptainer.Command, src string) bool {
	dropped := false
	kept := cmd.Flags[:0]
	for _, f := range cmd.Flags {
		if f.Canonical() != "--bind" {
			kept = append(kept, f)
			continue
		}
		var specs []string
		for _, s := range strings.Split(f.Value, ",") {
			if s0, _, _ := strings.Cut(s, ":"); filepath.Clean(s0) == filepath.Clean(src) {
				dropped = true
				continue
			}
			specs = append(specs, s)
		}
		if len(specs) > 0 {
			f.Value = strings.Join(specs, ",")
			kept = append(kept, f)
		}
	}
	cmd.Flags = kept
	return dropped
}

func cloneSpec(s *Spec) *Spec {
	c := *s
	c.Argv = append([]string(nil), s.Argv...)
	if s.Env != nil {
		c.Env = map[string]string{}
		for k, v := range s.Env {
			c.Env[k] = v
		}
	}
	if s.Metadata != nil {
		c.Metadata = map[string]json.RawMessage{}
		for k, v := range s.Metadata {
			c.Metadata[k] = v
		}
	}
	return &c
}
