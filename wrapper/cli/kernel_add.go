package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/templates"
	"github.com/sifkernel/sifkernel/wrapper/apptainer"
	"github.com/sifkernel/sifkernel/wrapper/fsx"
	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
)

func (e *env) kernelAddCommand() *cli.Command {
	return &cli.Command{
		Name:      "add",
		Usage:     "make a kernelspec that runs a kernel inside a container image",
		ArgsUsage: "NAME",
		Description: "Writes <data dir>/kernels/NAME/kernel.json. --image takes a .sif path or a\n" +
			"docker:// (or oras://, library://) reference, which is pulled once with\n" +
			"`apptainer pull` into kernel.pull_dir.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "image", Aliases: []string{"i"}, Usage: "`IMAGE`: a .sif file or docker://REF"},
			&cli.StringFlag{Name: "display-name", Usage: "name shown in Jupyter (default: from the language and image)"},
			&cli.StringFlag{Name: "language", Value: "python", Usage: "kernel language: " + strings.Join(templates.Languages(), ", ")},
			&cli.StringSliceFlag{Name: "bind", Aliases: []string{"B"}, Usage: "bind `SRC[:DST]` into the container (repeatable)"},
			&cli.StringSliceFlag{Name: "env", Usage: "set `NAME=VALUE` inside the container (repeatable)"},
			&cli.StringFlag{Name: "gpu", Value: kernelspec.GPUAuto, Usage: "auto (each job decides), always or never"},
			&cli.BoolFlag{Name: "no-stage", Usage: "never copy the image to node-local disk"},
			dirFlag,
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "replace an existing kernel (its kernel.json is kept as a backup)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("kernel add takes one NAME, e.g. sifkernel kernel add bert --image bert.sif")
			}
			if c.String("image") == "" {
				return usagef("kernel add needs --image IMAGE")
			}
			if g := c.String("gpu"); !slices.Contains([]string{kernelspec.GPUAuto, kernelspec.GPUAlways, kernelspec.GPUNever}, g) {
				return usagef("--gpu %q: want auto, always or never", g)
			}
			return e.kernelAdd(c.Context, c.Args().First(), c)
		},
	}
}

func (e *env) kernelAdd(ctx context.Context, name string, c *cli.Context) error {
	if err := kernelspec.ValidName(name); err != nil {
		return &UsageError{Err: err}
	}
	tmpl, err := templates.KernelFor(c.String("language"))
	if err != nil {
		return &UsageError{Err: err}
	}
	data, err := e.dataDir(c.String("dir"))
	if err != nil {
		return err
	}
	dir := filepath.Join(data, "kernels", name)
	old, err := existingKernel(dir, c.Bool("force"))
	if err != nil {
		return err
	}
	rt, rtErr := e.finder().Find(ctx)
	image, err := e.resolveImage(ctx, c.String("image"), rt, rtErr)
	if err != nil {
		return err
	}
	runtime := rt.Path
	if rtErr != nil {
		runtime = "apptainer"
		e.log.Warnf("%v; writing argv[0] as %q (found through PATH when Jupyter starts it; each job's copy uses the node's own)", rtErr, runtime)
	}
	display := c.String("display-name")
	if display == "" {
		display = strings.ReplaceAll(tmpl.DisplayName, "{image}", strings.TrimSuffix(filepath.Base(image), ".sif"))
	}
	spec, err := kernelspec.New(kernelspec.NewOptions{
		Runtime: runtime, Image: image, Command: tmpl.Command, Language: tmpl.Language,
		DisplayName: display, InterruptMode: tmpl.InterruptMode,
		Binds: c.StringSlice("bind"), Env: c.StringSlice("env"),
		GPU: c.String("gpu"), GPUFlag: e.cfg.Apptainer.GPUFlag, Stage: !c.Bool("no-stage"),
		NoUserSite: e.cfg.Kernel.PythonNoUserSite, Version: e.Version,
		Checker: kernelspec.Checker{Env: e.kernelEnv()},
	})
	if err != nil {
		return &UsageError{Err: err}
	}
	return e.publishKernel(dir, name, spec, old)
}

// existingKernel refuses to replace a kernel without --force, and returns the
// bytes of the kernel.json that --force replaces, to keep as a backup.
func existingKernel(dir string, force bool) ([]byte, error) {
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

func (e *env) publishKernel(dir, name string, spec *kernelspec.Spec, old []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	file := filepath.Join(dir, kernelspec.FileName)
	if old != nil {
		backup, err := kernelspec.Backup(file, old, e.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "kept the previous %s as %s\n", kernelspec.FileName, backup)
	}
	if err := kernelspec.Write(dir, spec); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "created kernel %q (%s) in %s\n", name, spec.DisplayName, file)
	fmt.Fprintf(e.Stdout, "check it with: sifkernel kernel check %s\n", name)
	return nil
}

// resolveImage returns the absolute path of a usable image, pulling a remote
// reference first.
func (e *env) resolveImage(ctx context.Context, image string, rt apptainer.Runtime, rtErr error) (string, error) {
	if strings.Contains(image, "://") {
		if rtErr != nil {
			return "", fmt.Errorf("pulling %s needs Apptainer: %w", image, rtErr)
		}
		return e.pull(ctx, rt, image)
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
		e.log.Warn(note)
	}
	return abs, nil
}
