package kernelspec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/sifkernel/sifkernel/wrapper/apptainer"
	"github.com/sifkernel/sifkernel/wrapper/fsx"
	"github.com/sifkernel/sifkernel/wrapper/sifimage"
)

// Severity ranks a finding. Only errors make `kernel check` fail.
type Severity string

// The severities, most serious first.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
	Info    Severity = "info"
)

// Finding is one problem check found in a kernelspec.
type Finding struct {
	Severity Severity `json:"severity"`
	Code     string   `json:"code"`
	File     string   `json:"file"`
	Line     int      `json:"line,omitempty"`
	Column   int      `json:"column,omitempty"`
	Message  string   `json:"message"`
	Hint     string   `json:"hint,omitempty"`
	Fixable  bool     `json:"fixable"` // `sifkernel kernel fix` can repair it
}

func (f Finding) String() string {
	loc := f.File
	if f.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", f.File, f.Line, f.Column)
	}
	s := fmt.Sprintf("%s: %s: %s [%s]", loc, f.Severity, f.Message, f.Code)
	if f.Hint != "" {
		s += "\n    hint: " + f.Hint
	}
	return s
}

// Checker lints kernelspecs against what is on this node.
type Checker struct {
	Env     Env
	Runtime *apptainer.Runtime // the runtime found here; nil if none
	GPUFlag string             // the flag that adds GPUs, "--nv"
	// LookPath resolves a relative argv[0]; nil means exec.LookPath.
	LookPath func(string) (string, error)
	// Other is the kernel directory each folded name resolves to under the
	// other Jupyter generation, OtherName that generation (see
	// Env.OtherWinners); nil to say nothing of it.
	Other     map[string]string
	OtherName string
}

// Check lints one entry. The findings are in the order a reader fixes them.
func (c Checker) Check(e Entry) []Finding {
	r := &report{file: e.File()}
	if e.Ignored != "" {
		r.add(Warning, "ignored", e.Ignored, "make kernel.json a regular file, or remove the directory")
		return r.out
	}
	c.checkName(r, e)
	k := e.Kernel
	var le *LoadError
	if errors.As(e.LoadErr, &le) {
		r.add(Error, "jupyter-load", "jupyter_client cannot load it: "+le.Reason,
			"Jupyter leaves this kernel out of its list and says why only in its own log")
	}
	if e.Err != nil {
		c.checkLoadError(r, e.Kernel)
		if k = straightened(e.Kernel); k == nil {
			return r.out
		}
	}
	s := k.Spec
	if s.DisplayName == "" {
		r.add(Warning, "display-name", "no display_name: Jupyter shows an empty name", "")
	}
	if len(s.Argv) == 0 {
		r.add(Error, "argv", "argv is empty: there is nothing to start", "")
		return r.out
	}
	if !slices.ContainsFunc(s.Argv, func(a string) bool { return strings.Contains(a, ConnectionFile) }) {
		r.add(Error, "connection-file", "argv does not pass {connection_file}: the kernel cannot find its ports",
			"add \"{connection_file}\" where the kernel expects the connection file, e.g. after -f")
	}
	c.checkArgv0(r, s.Argv[0])
	if IsContainer(s) {
		c.checkContainer(r, k)
	}
	return r.out
}

// straightened is the kernel as it reads once its curly quotes are repaired,
// so check can report everything else at once; nil if that does not parse.
func straightened(k *Kernel) *Kernel {
	var syn *SyntaxError
	if !errors.As(k.Err, &syn) || !syn.Curly {
		return nil
	}
	fixed, _, _ := RepairQuotes(k.Raw)
	spec, err := Parse(k.File(), fixed)
	if err != nil {
		return nil
	}
	return &Kernel{Name: k.Name, Dir: k.Dir, Raw: fixed, Spec: spec}
}

type report struct {
	file string
	out  []Finding
}

// add records a finding; whether fix can repair it is the rule's to say.
func (r *report) add(sev Severity, code, msg, hint string) *Finding {
	r.out = append(r.out, Finding{Severity: sev, Code: code, File: r.file, Message: msg, Hint: hint, Fixable: rule(code).Fixable()})
	return &r.out[len(r.out)-1]
}

// IsContainer reports whether a spec runs a container kernel: argv[0] is
// apptainer or singularity (any path), or it carries metadata.sifkernel.
func IsContainer(s *Spec) bool {
	if len(s.Argv) > 0 && apptainer.IsRuntime(s.Argv[0]) {
		return true
	}
	_, ok := s.Metadata["sifkernel"]
	return ok
}

func (c Checker) checkName(r *report, e Entry) {
	switch key := PyLower(e.Name); {
	case !JupyterValidName(key):
		r.add(Warning, "name", fmt.Sprintf("directory name %q is not a valid kernel name: Jupyter warns about it, but lists and starts it as %q", e.Name, key),
			"rename the directory using only a-z, 0-9, '.', '_' and '-'")
	case key != e.Name:
		r.add(Warning, "name", fmt.Sprintf("directory name %q has capitals: Jupyter lists it as %q", e.Name, key), "")
	}
	if other, ok := c.Other[PyLower(e.Name)]; ok && c.Other != nil {
		switch {
		case e.ShadowedBy == "" && !sameDir(other, e.Dir):
			r.add(Info, "jupyter-version", fmt.Sprintf("a Jupyter with %s uses %s for this name instead (%s)", c.OtherName, other, c.Env.Model()),
				"give the kernels different names if both Jupyters are in use here")
		case e.ShadowedBy != "" && sameDir(other, e.Dir):
			r.add(Info, "jupyter-version", fmt.Sprintf("a Jupyter with %s uses this one, not %s", c.OtherName, e.ShadowedBy), "")
		}
	}
	if e.ShadowedBy != "" {
		r.add(Warning, "shadowed", fmt.Sprintf("shadowed by %s, which comes first in Jupyter's search path: this one is never used", e.ShadowedBy),
			"remove one of them, or rename this one")
	}
}

func (c Checker) checkLoadError(r *report, k *Kernel) {
	var syn *SyntaxError
	var fe *FieldError
	switch {
	case errors.As(k.Err, &syn) && syn.Curly:
		f := r.add(Error, "json-curly-quotes", syn.Msg, "run `sifkernel kernel fix "+k.Name+"` to straighten them")
		f.Line, f.Column = syn.Line, syn.Column
	case errors.As(k.Err, &syn):
		f := r.add(Error, "json", "invalid JSON: "+syn.Msg, "Jupyter silently drops a kernel whose kernel.json does not parse")
		f.Line, f.Column = syn.Line, syn.Column
	case errors.As(k.Err, &fe) && k.LoadErr == nil:
		r.add(Error, "schema", fe.Error(), "Jupyter lists this kernel, but starting it fails")
	case errors.As(k.Err, &fe):
		r.add(Error, "schema", fe.Error(), "")
	default:
		r.add(Error, "read", "cannot read: "+strings.TrimPrefix(k.Err.Error(), k.File()+": "), "")
	}
}

func (c Checker) lookPath(name string) (string, error) {
	if c.LookPath != nil {
		return c.LookPath(name)
	}
	return exec.LookPath(name)
}

func (c Checker) checkArgv0(r *report, argv0 string) {
	if !filepath.IsAbs(argv0) {
		if _, err := c.lookPath(argv0); err != nil {
			r.add(Warning, "argv0", fmt.Sprintf("argv[0] %q is not on PATH here", argv0),
				"Jupyter runs it through PATH; use an absolute path or load the module that provides it")
		}
		return
	}
	err := apptainer.Executable(argv0)
	if err == nil {
		return
	}
	if c.staleRuntime(argv0) != nil {
		r.add(Error, "stale-apptainer", fmt.Sprintf("argv[0] %s: %v; this node has %s (%s)", argv0, err, c.Runtime.Path, versionOr(c.Runtime.Version)),
			"the Apptainer module was probably upgraded; `sifkernel kernel fix` points argv[0] at the one found here")
		return
	}
	r.add(Error, "argv0", fmt.Sprintf("argv[0] %s: %v", argv0, err), "")
}

// staleRuntime says why argv0 is a container runtime that no longer runs
// here while this node has another (nil if it is not): the one condition
// under which check reports stale-apptainer and fix points argv[0] at the
// node's runtime.
func (c Checker) staleRuntime(argv0 string) error {
	if !filepath.IsAbs(argv0) || !apptainer.IsRuntime(argv0) || c.Runtime == nil || c.Runtime.Path == argv0 {
		return nil
	}
	return apptainer.Executable(argv0)
}

func versionOr(v string) string {
	if v == "" {
		return "version unknown"
	}
	return "version " + v
}

func (c Checker) checkContainer(r *report, k *Kernel) {
	cmd, err := apptainer.Parse(k.Spec.Argv)
	if err != nil {
		r.add(Error, "container-argv", "cannot read the container command: "+err.Error(),
			"expected: RUNTIME exec [flags] IMAGE COMMAND...")
		return
	}
	for _, u := range cmd.Unknown() {
		r.add(Warning, "unknown-flag", fmt.Sprintf("unknown Apptainer flag %s: taken to have no value", u),
			"if it takes a value, write it as "+u+"=VALUE so the image is found")
	}
	c.checkImage(r, k, cmd.Image)
	meta, _, err := k.Spec.Sifkernel()
	if err != nil {
		r.add(Error, "schema", err.Error(), "")
	}
	if gpu := c.gpuFlag(); cmd.Has(gpu) && meta.GPU != GPUAlways {
		r.add(Warning, "nv-hardcoded", gpu+" is hard-coded: CPU nodes print warnings, and sifkernel cannot decide per job",
			"`sifkernel kernel fix` removes it and lets each job add it on GPU nodes (or keep it with --keep-nv)")
	}
	if rt := c.Env.RuntimeDir(); !cmd.Sees(rt, c.Env.Home) {
		r.add(Error, "connection-dir", fmt.Sprintf("the connection file's directory %s is not visible in the container", rt),
			"`sifkernel kernel fix` adds a --bind for it")
	}
	if !hasNoUserSite(k.Spec, cmd) && strings.EqualFold(k.Spec.Language, "python") {
		r.add(Info, "user-site", "PYTHONNOUSERSITE is not set: packages in ~/.local can shadow the image's",
			"add --env PYTHONNOUSERSITE=1 (kernels made by `sifkernel kernel add` have it)")
	}
}

func (c Checker) gpuFlag() string {
	if c.GPUFlag == "" {
		return "--nv"
	}
	return c.GPUFlag
}

func hasNoUserSite(s *Spec, cmd *apptainer.Command) bool {
	if _, ok := s.Env["PYTHONNOUSERSITE"]; ok {
		return true
	}
	if _, ok := s.Env["APPTAINERENV_PYTHONNOUSERSITE"]; ok {
		return true
	}
	return slices.ContainsFunc(cmd.Values("--env"), func(v string) bool {
		return slices.ContainsFunc(strings.Split(v, ","), func(kv string) bool { return strings.HasPrefix(kv, "PYTHONNOUSERSITE=") })
	})
}

func (c Checker) checkImage(r *report, k *Kernel, image string) {
	image = strings.ReplaceAll(image, "{resource_dir}", k.Dir)
	if i := strings.Index(image, "://"); i > 0 {
		r.add(Info, "image-remote", fmt.Sprintf("image %s is fetched by Apptainer at every start and cannot be staged", image),
			"pull it once: sifkernel kernel add NAME --image "+image)
		return
	}
	if !filepath.IsAbs(image) {
		r.add(Warning, "image-relative", fmt.Sprintf("image %q is relative: it depends on the directory Jupyter starts in", image),
			"use an absolute path")
		return
	}
	if msg, err := CheckImage(image); err != nil {
		r.add(Error, imageCode(err), err.Error(), "")
	} else if msg != "" {
		r.add(Warning, "image-format", msg, "")
	}
}

// CheckImage says whether image can be run: it exists, is readable, and if
// it is a SIF, has a usable header. A readable non-SIF image gives a note.
func CheckImage(image string) (note string, err error) {
	if st, err := os.Stat(image); err == nil && st.IsDir() {
		return fmt.Sprintf("image %s is a sandbox directory: it runs, but cannot be staged", image), nil
	}
	f, err := fsx.OpenRegular(image, false) // a FIFO must not hang check
	if err != nil {
		return "", &ImageError{Image: image, Err: err}
	}
	defer f.Close()
	if !sifimage.HasMagic(f) {
		if _, err := f.ReadAt(make([]byte, 1), 0); err != nil {
			return "", &ImageError{Image: image, Err: err}
		}
		return fmt.Sprintf("image %s is not a SIF file: it may run, but sifkernel cannot check or stage it", image), nil
	}
	if err := inspectOnce(f); err != nil {
		return "", &ImageError{Image: image, Err: err}
	}
	return "", nil
}

// inspected remembers the SIF headers this process read, by file identity
// (device, inode, size, mtime): kernels often share an image, and reading a
// SIF's descriptors is most of what check costs (500 kernels of one image:
// 140 ms without, see BenchmarkCheck500).
var inspected = struct {
	sync.Mutex
	m map[[4]int64]error
}{m: map[[4]int64]error{}}

func inspectOnce(f *os.File) error {
	st, err := f.Stat()
	sys, ok := st.Sys().(*syscall.Stat_t)
	if err != nil || !ok {
		_, err := sifimage.Inspect(f)
		return err
	}
	key := [4]int64{int64(sys.Dev), int64(sys.Ino), st.Size(), st.ModTime().UnixNano()}
	inspected.Lock()
	err, seen := inspected.m[key]
	inspected.Unlock()
	if seen {
		return err
	}
	_, err = sifimage.Inspect(f)
	inspected.Lock()
	if len(inspected.m) < 4096 {
		inspected.m[key] = err
	}
	inspected.Unlock()
	return err
}

// ImageError says why an image cannot be used.
type ImageError struct {
	Image string
	Err   error
}

func (e *ImageError) Error() string {
	switch {
	case errors.Is(e.Err, fs.ErrNotExist):
		return fmt.Sprintf("image %s does not exist (purged from scratch?)", e.Image)
	case errors.Is(e.Err, fs.ErrPermission):
		return fmt.Sprintf("image %s is not readable by you", e.Image)
	case errors.Is(e.Err, sifimage.ErrCorrupt):
		return fmt.Sprintf("image %s: %v", e.Image, e.Err)
	}
	return fmt.Sprintf("image %s: %v", e.Image, e.Err)
}

func (e *ImageError) Unwrap() error { return e.Err }

func imageCode(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "image-missing"
	case errors.Is(err, sifimage.ErrCorrupt):
		return "image-corrupt"
	}
	return "image-unreadable"
}

// sameDir says whether two paths name the same directory.
func sameDir(a, b string) bool {
	if a == b {
		return true
	}
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
