// Command apptainer-standin is NOT Apptainer. It stands in for Apptainer in
// sifkernel's test cluster, because no Apptainer is packaged for Debian. It
// takes the argv sifkernel writes (`exec|run [flags] IMAGE CMD...`,
// `--version`), records each call (argv, uid, image) as a JSON line in
// $SIFKERNEL_STANDIN_LOG, really opens the image as a SIF and extracts its
// squashfs root filesystem (a truncated or corrupt image fails, as with
// Apptainer), and runs CMD with that root filesystem as / under bubblewrap,
// with the host's /usr (for Python and Jupyter), $HOME, /tmp and the --bind
// paths visible. It isolates nothing and must never be installed as apptainer.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/sifkernel/sifkernel/wrapper/apptainer"
	"github.com/sifkernel/sifkernel/wrapper/sifimage"
)

const version = "1.3.3-standin"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--version" {
		fmt.Println("apptainer version " + version)
		return
	}
	if err := run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "FATAL:  ", err)
		os.Exit(255)
	}
}

func run(args []string) error {
	cmd, err := apptainer.Parse(args)
	if err != nil {
		return err
	}
	logCall(args, cmd)
	if cmd.Has("--nv") && os.Getenv("CUDA_VISIBLE_DEVICES") == "" {
		// What Apptainer prints for --nv on a node without NVIDIA GPUs. The
		// stand-in takes "no GPUs given to this job" for "none on the node".
		fmt.Fprintln(os.Stderr, "WARNING: Could not find any nv files on this host!")
	}
	if len(cmd.Args) == 0 {
		return fmt.Errorf("no command to run (this stand-in does not run runscripts)")
	}
	work, err := os.MkdirTemp("", "apptainer-standin-")
	if err != nil {
		return err
	}
	root := filepath.Join(work, "root")
	if err := extract(cmd.Image, work, root); err != nil {
		os.RemoveAll(work)
		return fmt.Errorf("could not open image %s: %w", cmd.Image, err)
	}
	argv, env := bwrapArgs(cmd, root)
	// bwrap replaces this process; the extracted tree is removed by the
	// wrapper shell around it so nothing is left behind.
	script := `"$@"; rc=$?; rm -rf "` + work + `"; exit $rc`
	full := append([]string{"/bin/sh", "-c", script, "sh"}, argv...)
	return syscall.Exec("/bin/sh", full, env)
}

// extract copies the SIF's root filesystem partition out and unsquashes it.
func extract(image, work, root string) error {
	f, err := os.Open(image)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := sifimage.Inspect(f)
	if err != nil {
		return err
	}
	part := filepath.Join(work, "rootfs.squashfs")
	out, err := os.Create(part)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, io.NewSectionReader(f, info.RootfsOffset, info.RootfsSize))
	out.Close()
	if err != nil {
		return err
	}
	msg, err := exec.Command("/usr/bin/unsquashfs", "-no-progress", "-quiet", "-no-xattrs", "-d", root, part).CombinedOutput()
	if err != nil {
		return fmt.Errorf("unsquashfs: %v: %s", err, strings.TrimSpace(string(msg)))
	}
	return os.Remove(part)
}

func bwrapArgs(cmd *apptainer.Command, root string) ([]string, []string) {
	a := []string{"/usr/bin/bwrap", "--bind", root, "/", "--ro-bind", "/usr", "/usr",
		"--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
		"--symlink", "usr/sbin", "/sbin", "--proc", "/proc", "--dev", "/dev", "--bind", "/tmp", "/tmp",
		"--ro-bind-try", "/etc/ssl", "/etc/ssl", "--die-with-parent"}
	if home := os.Getenv("HOME"); home != "" && !cmd.Has("--no-home") && !cmd.Has("--containall") && !cmd.Has("--contain") {
		a = append(a, "--bind", home, home)
	}
	for _, b := range cmd.Binds() {
		a = append(a, "--bind", b.Src, b.Dst)
	}
	if pwd, err := os.Getwd(); err == nil {
		a = append(a, "--chdir", pwd)
	}
	// Apptainer gives the container its own PATH rather than the host's; this
	// one leaves out /usr/local, where a test machine may have a Python
	// without Debian's Jupyter packages.
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	for _, v := range cmd.Values("--env") {
		env = append(env, strings.Split(v, ",")...)
	}
	env = append(env, "APPTAINER_CONTAINER="+cmd.Image, "APPTAINER_NAME="+filepath.Base(cmd.Image))
	return append(append(a, "--"), cmd.Args...), env
}

// logCall appends one JSON line per call to $SIFKERNEL_STANDIN_LOG.
func logCall(args []string, cmd *apptainer.Command) {
	path := os.Getenv("SIFKERNEL_STANDIN_LOG")
	if path == "" {
		path = "/tmp/sifkernel-standin.log"
	}
	line, _ := json.Marshal(map[string]any{"argv": args, "image": cmd.Image, "uid": os.Getuid(), "nv": cmd.Has("--nv")})
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
	if err != nil {
		return
	}
	defer f.Close()
	f.Write(append(line, '\n'))
}
