package kernelspec

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sifkernel/sifkernel/wrapper/apptainer"
)

// NewOptions describe a container kernel to create.
type NewOptions struct {
	Runtime       string   // argv[0]: the Apptainer found, or "apptainer" to use PATH
	Image         string   // absolute path of the image
	Command       []string // the kernel command inside the container, with {connection_file}
	Language      string
	DisplayName   string
	InterruptMode string
	Binds         []string // SRC[:DST[:OPTS]]
	Env           []string // NAME=VALUE, set inside the container
	GPU           string   // auto, always or never
	GPUFlag       string   // "--nv"
	Stage         bool     // job hooks may stage the image to node-local disk
	NoUserSite    bool     // add PYTHONNOUSERSITE=1 for Python kernels
	Version       string   // sifkernel's version, for provenance
	Checker       Checker  // its Env decides the connection file's directory
}

// New builds the spec of a container kernel. With GPU "auto" it writes no GPU
// flag: the job-time overlay adds it on GPU nodes.
func New(o NewOptions) (*Spec, error) {
	if !slices.ContainsFunc(o.Command, func(a string) bool { return strings.Contains(a, ConnectionFile) }) {
		return nil, fmt.Errorf("kernel command %q does not pass %s", o.Command, ConnectionFile)
	}
	cmd := &apptainer.Command{Runtime: o.Runtime, Verb: "exec", Image: o.Image, Args: slices.Clone(o.Command)}
	switch o.GPU {
	case GPUAlways:
		cmd.Add(o.GPUFlag, "")
	case GPUAuto, GPUNever:
	default:
		return nil, fmt.Errorf("gpu policy %q: want auto, always or never", o.GPU)
	}
	for _, b := range o.Binds {
		if src, _, _ := strings.Cut(b, ":"); !filepath.IsAbs(src) {
			return nil, fmt.Errorf("bind %q: the source must be an absolute path", b)
		}
		cmd.Add("--bind", b)
	}
	if rt := o.Checker.Env.RuntimeDir(); !cmd.Sees(rt, o.Checker.Env.Home) {
		cmd.Add("--bind", existingAncestor(rt))
	}
	for _, kv := range o.Env {
		if name, _, ok := strings.Cut(kv, "="); !ok || name == "" {
			return nil, fmt.Errorf("env %q: want NAME=VALUE", kv)
		}
		cmd.Add("--env", kv)
	}
	if o.NoUserSite && strings.EqualFold(o.Language, "python") && !slices.ContainsFunc(o.Env, func(kv string) bool {
		return strings.HasPrefix(kv, "PYTHONNOUSERSITE=")
	}) {
		cmd.Add("--env", "PYTHONNOUSERSITE=1")
	}
	spec := &Spec{
		Argv: cmd.Argv(), DisplayName: o.DisplayName, Language: o.Language, InterruptMode: o.InterruptMode,
	}
	stage := o.Stage
	err := spec.SetSifkernel(Meta{Image: o.Image, GPU: o.GPU, Stage: &stage, CreatedByVersion: o.Version})
	return spec, err
}
