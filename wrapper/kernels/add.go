package kernels

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sifkernel/sifkernel/templates"
	"github.com/sifkernel/sifkernel/wrapper/apptainer"
	"github.com/sifkernel/sifkernel/wrapper/fsx"
	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
)

// AddOptions say what `kernel add` makes.
type AddOptions struct {
	Name        string
	Image       string // a .sif path or a docker:// (oras://, library://) reference
	DisplayName string // "" means from the language template and the image
	Language    string // a template: templates.Languages()
	Binds, Env  []string
	GPU         string // kernelspec.GPUAuto, GPUAlways or GPUNever
	NoStage     bool
	DataDir     string // "" means the user's Jupyter data directory
	Force       bool   // replace an existing kernel, keeping its kernel.json as a backup
}

// Added says what Add wrote.
type Added struct {
	File        string // the new kernel.json
	DisplayName string
	Backup      string // the replaced kernel.json's backup, if one was replaced
}

// Add writes DATA/kernels/NAME/kernel.json for a kernel that runs inside
// the image, pulling a remote image first. An existing kernel is replaced
// only with Force, and its kernel.json is kept as a backup.
func (u *User) Add(ctx context.Context, o AddOptions) (Added, error) {
	var a Added
	if err := kernelspec.ValidName(o.Name); err != nil {
		return a, usage(err)
	}
	if o.Image == "" {
		return a, usage(errors.New("kernel add needs --image IMAGE"))
	}
	if !slices.Contains([]string{kernelspec.GPUAuto, kernelspec.GPUAlways, kernelspec.GPUNever}, o.GPU) {
		return a, usage(fmt.Errorf("--gpu %q: want auto, always or never", o.GPU))
	}
	tmpl, err := templates.KernelFor(o.Language)
	if err != nil {
		return a, usage(err)
	}
	data, err := u.DataDir(o.DataDir)
	if err != nil {
		return a, err
	}
	dir := filepath.Join(data, "kernels", o.Name)
	old, err := existing(dir, o.Force)
	if err != nil {
		return a, err
	}
	rt, rtErr := u.Finder().Find(ctx)
	image, err := u.resolveImage(ctx, o.Image, rt, rtErr)
	if err != nil {
		return a, err
	}
	runtime := rt.Path
	if rtErr != nil {
		runtime = "apptainer"
		u.Log.Warnf("%v; writing argv[0] as %q (found through PATH when Jupyter starts it; each job's copy uses the node's own)", rtErr, runtime)
	}
	display := o.DisplayName
	if display == "" {
		display = strings.ReplaceAll(tmpl.DisplayName, "{image}", strings.TrimSuffix(filepath.Base(image), ".sif"))
	}
	spec, err := kernelspec.New(kernelspec.NewOptions{
		Runtime: runtime, Image: image, Command: tmpl.Command, Language: tmpl.Language,
		DisplayName: display, InterruptMode: tmpl.InterruptMode,
		Binds: o.Binds, Env: o.Env,
		GPU: o.GPU, GPUFlag: u.Config.Apptainer.GPUFlag, Stage: !o.NoStage,
		NoUserSite: u.Config.Kernel.PythonNoUserSite, Version: u.Version,
		Checker: kernelspec.Checker{Env: u.Env()},
	})
	if err != nil {
		return a, usage(err)
	}
	return u.publish(dir, spec, old)
}

// existing refuses to replace a kernel without force, and returns the bytes
// of the kernel.json that force replaces, to keep as a backup.
func existing(dir string, force bool) ([]byte, error) {
	file := filepath.Join(dir, kernelspec.FileName)
	old, err := fsx.ReadRegular(file, kernelspec.MaxFileSize, false)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", file, err)
	case !force:
		return nil, fmt.Errorf("kernel %s already exists (%s); use --force to replace it", filepath.Base(dir), file)
	}
	return old, nil
}

func (u *User) publish(dir string, spec *kernelspec.Spec, old []byte) (Added, error) {
	a := Added{File: filepath.Join(dir, kernelspec.FileName), DisplayName: spec.DisplayName}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return a, fmt.Errorf("creating %s: %w", dir, err)
	}
	if old != nil {
		backup, err := kernelspec.Backup(a.File, old, u.Now())
		if err != nil {
			return a, err
		}
		a.Backup = backup
	}
	return a, kernelspec.Write(dir, spec)
}

// resolveImage returns the absolute path of a usable image, pulling a remote
// reference first.
func (u *User) resolveImage(ctx context.Context, image string, rt apptainer.Runtime, rtErr error) (string, error) {
	if strings.Contains(image, "://") {
		if rtErr != nil {
			return "", fmt.Errorf("pulling %s needs Apptainer: %w", image, rtErr)
		}
		return u.Pull(ctx, rt, image)
	}
	abs, err := filepath.Abs(image)
	if err != nil {
		return "", err
	}
	note, err := kernelspec.CheckImage(abs)
	if err != nil {
		return "", err
	}
	if note != "" {
		u.Log.Warn(note)
	}
	return abs, nil
}
