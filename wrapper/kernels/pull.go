package kernels

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sifkernel/sifkernel/wrapper/apptainer"
	"github.com/sifkernel/sifkernel/wrapper/fsx"
	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
	"github.com/sifkernel/sifkernel/wrapper/untrusted"
)

// pullDir is kernel.pull_dir, else $SCRATCH/sifkernel-images, else
// ~/.local/share/sifkernel/images.
func (u *User) pullDir() string {
	if d := u.Config.Kernel.PullDir; d != "" {
		return d
	}
	if s := u.Getenv("SCRATCH"); s != "" {
		return filepath.Join(s, "sifkernel-images")
	}
	return filepath.Join(u.Home, ".local", "share", "sifkernel", "images")
}

// ImageFileName turns docker://python:3.11-slim into python_3.11-slim.sif.
func ImageFileName(ref string) string {
	_, rest, _ := strings.Cut(ref, "://")
	r := strings.NewReplacer("/", "_", ":", "_", "@", "_")
	return strings.Trim(r.Replace(rest), "_.") + ".sif"
}

// Pull runs `apptainer pull` into the pull directory with its output shown
// live. It pulls to a temporary name and renames, so an interrupted pull
// never leaves a half image under the final name. An image already pulled
// is reused.
func (u *User) Pull(ctx context.Context, rt apptainer.Runtime, ref string) (string, error) {
	dir := u.pullDir()
	dest := filepath.Join(dir, ImageFileName(ref))
	if _, err := os.Stat(dest); err == nil {
		u.Log.Infof("using %s, pulled earlier from %s (remove it to pull again)", dest, ref)
		return dest, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating pull directory: %w", err)
	}
	pending, err := fsx.Reserve(dest)
	if err != nil {
		return "", err
	}
	defer pending.Cleanup() // nothing to do once published
	tmp := pending.Name()
	cmd := exec.CommandContext(ctx, rt.Path, "pull", tmp, ref)
	// Apptainer's own output is shown live; its last FATAL line also goes
	// into the error, so a failed pull says why in one line.
	said := &untrusted.Buffer{Limit: 64 << 10}
	out := io.MultiWriter(u.Stderr, said) // one writer: exec then writes from one goroutine
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, stopped whole (mksquashfs too) on Ctrl-C, with
	// SIGTERM first so Apptainer removes its temporary files.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	fmt.Fprintf(u.Stderr, "pulling %s into %s\n", ref, dest)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("pulling %s: interrupted (%w); nothing was written to %s", ref, ctx.Err(), dir)
		}
		return "", fmt.Errorf("pulling %s failed (%w)%s; nothing was written to %s", ref, err, fatalLine(said.Bytes()), dir)
	}
	if _, err := kernelspec.CheckImage(tmp); err != nil {
		return "", fmt.Errorf("apptainer pull %s gave an unusable image: %w", ref, err)
	}
	if err := pending.Publish(0, fsx.Durable); err != nil {
		return "", err
	}
	return dest, nil
}

// fatalLine is Apptainer's last "FATAL:" line, as ": <reason>", or "".
func fatalLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if _, msg, ok := strings.Cut(lines[i], "FATAL:"); ok {
			return ": " + untrusted.Cut(strings.TrimSpace(msg), 1024)
		}
	}
	return ""
}
