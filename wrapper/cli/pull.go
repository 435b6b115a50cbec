package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/sifkernel/sifkernel/wrapper/apptainer"
	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
)

// pullDir is kernel.pull_dir, else $SCRATCH/sifkernel-images, else
// ~/.local/share/sifkernel/images.
func (e *env) pullDir() string {
	if d := e.cfg.Kernel.PullDir; d != "" {
		return d
	}
	if s := e.Getenv("SCRATCH"); s != "" {
		return filepath.Join(s, "sifkernel-images")
	}
	return filepath.Join(e.Home, ".local", "share", "sifkernel", "images")
}

// imageFileName turns docker://python:3.11-slim into python_3.11-slim.sif.
func imageFileName(ref string) string {
	_, rest, _ := strings.Cut(ref, "://")
	r := strings.NewReplacer("/", "_", ":", "_", "@", "_")
	return strings.Trim(r.Replace(rest), "_.") + ".sif"
}

// pull runs `apptainer pull` into the pull directory with its output shown
// live. It pulls to a temporary name and renames, so an interrupted pull
// never leaves a half image under the final name. An image already pulled
// is reused.
func (e *env) pull(ctx context.Context, rt apptainer.Runtime, ref string) (string, error) {
	dir := e.pullDir()
	dest := filepath.Join(dir, imageFileName(ref))
	if _, err := os.Stat(dest); err == nil {
		e.log.Infof("using %s, pulled earlier from %s (remove it to pull again)", dest, ref)
		return dest, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating pull directory: %w", err)
	}
	tmp := fmt.Sprintf("%s.tmp-%d", dest, os.Getpid())
	defer os.Remove(tmp)
	cmd := exec.CommandContext(ctx, rt.Path, "pull", tmp, ref)
	cmd.Stdout, cmd.Stderr = e.Stderr, e.Stderr
	fmt.Fprintf(e.Stderr, "pulling %s into %s\n", ref, dest)
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("apptainer pull %s: %w", ref, err)
	}
	if _, err := kernelspec.CheckImage(tmp); err != nil {
		return "", fmt.Errorf("apptainer pull %s gave an unusable image: %w", ref, err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		return "", err
	}
	return dest, nil
}
