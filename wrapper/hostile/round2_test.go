package hostile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

// Round two: a child the user controls, mounts the user makes, leftovers of
// any shape, and faults a user can cause that must not look like the node's.
func init() { attacks = append(attacks, round2...) }

var round2 = []attack{
	{"a traced child prints a forged 1 MiB report: root logs without end, grows, and counts a petabyte staged", func(t *testing.T, n *node) {
		n.kernel("k", containerKernel("k", filepath.Join(n.mallory.home, "files/img.sif")))
		honest := n.hook("prolog_slurmd", "201", n.mallory)
		n.expect0(honest, hookLimit)
		n.installForge()
		from := fileSize(n.log)
		r := n.hook("prolog_slurmd", "202", n.mallory)
		n.expect0(r, hookLimit)
		lines := strings.Count(n.logSince(from), "\n")
		t.Logf("forged report: %d log lines, %d log bytes, root's peak RSS %d KiB (an honest Prolog: %d KiB)", lines, r.logBytes, r.rootRSSKiB, honest.rootRSSKiB)
		if lines > 64+20 || r.logBytes > 64<<10 {
			t.Errorf("root logged %d lines, %d bytes for one forged report; want at most max_per_job+20 lines and 64 KiB", lines, r.logBytes)
		}
		if r.rootRSSKiB > honest.rootRSSKiB+16<<10 {
			t.Errorf("root's peak RSS %d KiB, against %d KiB for an honest report: not flat", r.rootRSSKiB, honest.rootRSSKiB)
		}
		n.logSays("more kernels and")
		if strings.Contains(n.logSince(from), "\nlevel=error msg=FORGED") {
			t.Error("a forged kernel name started a log line of its own")
		}
		var c struct {
			BytesStaged  uint64  `json:"bytes_staged"`
			StageSeconds float64 `json:"stage_seconds"`
		}
		data, err := os.ReadFile(filepath.Join(n.base, "metrics", "counters.json"))
		testkit.Must(t, err)
		testkit.Must(t, json.Unmarshal(data, &c))
		var fs unix.Statfs_t
		testkit.Must(t, unix.Statfs(n.cache, &fs))
		if size := uint64(fs.Blocks) * uint64(fs.Bsize); c.BytesStaged > size || c.StageSeconds > 20+30 {
			t.Errorf("counters took the forgery: %d bytes staged (the file system holds %d), %.0f s", c.BytesStaged, size, c.StageSeconds)
		}
	}},
	{"a traced child's usage report: metrics shows 9.2e18 bytes and -2^31 entries for the user", func(t *testing.T, n *node) {
		n.kernel("k", containerKernel("k", filepath.Join(n.mallory.home, "files/img.sif")))
		n.expect0(n.hook("prolog_slurmd", "203", n.mallory), hookLimit)
		n.installForge()
		r := n.command("metrics")
		n.expect0(r, hookLimit)
		if strings.Contains(r.out, "9.2e+18") || strings.Contains(r.out, "-2.147483648e+09") {
			t.Errorf("metrics reported the forged usage:\n%s", r.out)
		}
		if !strings.Contains(r.out, "sifkernel_cache_user_errors 1") {
			t.Errorf("metrics did not count the implausible report as an error:\n%s", tail(r.out, 2000))
		}
	}},
	{"a traced child writes through a descriptor root inherited: root's 0600 file changes", func(t *testing.T, n *node) {
		target := filepath.Join(n.rootDir, "inherited")
		testkit.Must(t, os.WriteFile(target, []byte("root's only\n"), 0o600))
		n.before = n.snapshot()
		f, err := os.OpenFile(target, os.O_RDWR|os.O_APPEND, 0)
		testkit.Must(t, err)
		defer f.Close()
		n.extraFiles = []*os.File{f} // fd 3 of the hook, not close-on-exec
		n.installForge()
		n.kernel("k", containerKernel("k", filepath.Join(n.mallory.home, "files/img.sif")))
		n.expect0(n.hook("prolog_slurmd", "204", n.mallory), hookLimit)
		n.expect0(n.hook("epilog_slurmd", "204", n.mallory), hookLimit)
		n.expect0(n.command("sweep", "--all"), hookLimit)
	}},
	{"the site's log file made first by a user in a directory users may write: root appends every job's lines to it", func(t *testing.T, n *node) {
		testkit.Must(t, os.Chmod(filepath.Dir(n.log), os.ModeSticky|0o777))
		if err := os.Remove(n.log); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		n.asMallory("touch " + n.log + " && chmod 644 " + n.log)
		r := n.hook("prolog_slurmd", "205", n.victim)
		n.expect0(r, hookLimit)
		if size := fileSize(n.log); size != 0 {
			t.Errorf("root wrote %d bytes to the log file mallory made", size)
		}
		if !strings.Contains(r.out, "not used: owned by uid") {
			t.Errorf("the hook did not say why it left the log file alone:\n%s", r.out)
		}
		// A hard link to a file of root's (protected_hardlinks off) is refused too.
		n.asRootRemove(filepath.Dir(n.log), filepath.Base(n.log))
		testkit.Must(t, os.Link(filepath.Join(n.rootDir, "101"), n.log))
		r = n.hook("epilog_slurmd", "205", n.victim)
		n.expect0(r, hookLimit)
		if !strings.Contains(r.out, "hard links") {
			t.Errorf("a hard-linked log file was not refused:\n%s", r.out)
		}
		n.asRootRemove(filepath.Dir(n.log), filepath.Base(n.log))
	}},
	{"metrics --textfile into a directory the attacker controls: root writes or renames through the attacker's links", func(t *testing.T, n *node) {
		dir := filepath.Join(n.tmp, "prom")
		n.asMallory("mkdir " + dir + " && ln -s " + filepath.Join(n.rootDir, "101") + " " + filepath.Join(dir, "sifkernel.prom"))
		r := n.command("metrics", "--textfile", dir)
		if r.code == 0 {
			t.Errorf("metrics --textfile into mallory's directory succeeded:\n%s", r.out)
		}
		if !strings.Contains(r.out, "not root") {
			t.Errorf("the refusal does not say why:\n%s", r.out)
		}
	}},
	{"a FUSE mount over the attacker's job directory claims the victim's uid: the victim's login exports the attacker's kernels, and a stopped daemon hangs every hook", func(t *testing.T, n *node) {
		n.fuseMountAsVictim(t, "206")
	}},
	{"the cache file system filled (inodes) through the attacker's own directory: the victim's Prolog drains the node (fail_node_on set)", func(t *testing.T, n *node) {
		testkit.Must(t, os.MkdirAll(n.cache, 0o755))
		testkit.Must(t, unix.Mount("tmpfs", n.cache, "tmpfs", 0, "size=8m,nr_inodes=64,mode=0755"))
		t.Cleanup(func() { testkit.Must(t, unix.Unmount(n.cache, unix.MNT_DETACH)) })
		n.setConfig("[prolog]\nfail_node_on = [\"cache_root\"]\n")
		n.before = n.snapshot()
		n.expect0(n.hook("prolog_slurmd", "207", n.mallory), hookLimit)
		n.asMallory(fmt.Sprintf("cd %s/users/%d && i=0; while touch f$i 2>/dev/null; do i=$((i+1)); done; test $i -gt 0", n.cache, n.mallory.uid))
		n.expect0(n.hook("prolog_slurmd", "208", n.victim), hookLimit)
		n.logSays("not a node fault")
		n.expect0(n.hook("epilog_slurmd", "208", n.victim), hookLimit)
		n.expect0(n.hook("epilog_slurmd", "207", n.mallory), hookLimit)
		n.expect0(n.command("sweep", "--all"), hookLimit)
	}},
	{"a leftover of another user's job with the same id: the victim's Prolog drains the node (fail_node_on set) or uses the attacker's directory", func(t *testing.T, n *node) {
		n.setConfig("[prolog]\nfail_node_on = [\"cache_root\"]\n")
		n.before = n.snapshot()
		n.expect0(n.hook("prolog_slurmd", "209", n.mallory), hookLimit)
		n.asMallory(fmt.Sprintf("mkdir -p %s/jobs/209/jupyter/kernels/evil && echo '{}' >%s/jobs/209/jupyter/kernels/evil/kernel.json", n.cache, n.cache))
		// No Epilog: the node crashed. Slurm's job ids start again; 209 is the victim's now.
		n.expect0(n.hook("prolog_slurmd", "209", n.victim), hookLimit)
		st, err := os.Lstat(filepath.Join(n.cache, "jobs/209"))
		testkit.Must(t, err)
		if uid := st.Sys().(*syscall.Stat_t).Uid; int(uid) != n.victim.uid {
			t.Errorf("jobs/209 belongs to uid %d, want the victim's %d", uid, n.victim.uid)
		}
		if exists(filepath.Join(n.cache, "jobs/209/jupyter/kernels/evil")) {
			t.Error("the victim's job directory holds the attacker's kernel")
		}
		n.expect0(n.hook("epilog_slurmd", "209", n.victim), hookLimit)
	}},
	{"leftovers of every shape after the Prolog: they outlive the Epilog and sweep", func(t *testing.T, n *node) {
		n.kernel("k", containerKernel("k", filepath.Join(n.mallory.home, "files/img.sif")))
		n.expect0(n.hook("prolog_slurmd", "210", n.mallory), hookLimit)
		job := filepath.Join(n.cache, "jobs/210")
		own := filepath.Join(n.cache, "users", strconv.Itoa(n.mallory.uid), "jobs")
		n.asMallory(fmt.Sprintf(`set -e
cd %[1]s
mkdir -p ro/inner && touch ro/inner/f && chmod 0500 ro/inner ro
mkdir none && touch none/f && chmod 000 none
mkfifo fifo; ln -s %[2]s rootlink; ln -s / slash
/usr/bin/python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind("sock")'
mkdir -p %[3]s/99999/x && chmod 0500 %[3]s/99999/x %[3]s/99999
mkdir -p ~/.config/sifkernel && echo 'this is [not toml' >~/.config/sifkernel/config.toml`, job, n.rootDir, own))
		n.deepAsMallory(job, 3000)
		var lim syscall.Rlimit
		testkit.Must(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
		low := lim
		low.Cur = 1024 // as slurmd's hooks commonly get: the tree is deeper
		testkit.Must(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low))
		r := n.hook("epilog_slurmd", "210", n.mallory)
		testkit.Must(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim))
		n.expect0(r, hookLimit)
		if exists(job) {
			t.Errorf("%s outlived the Epilog:\n%s", job, tail(n.logSince(0), 2000))
		}
		n.expect0(n.command("sweep", "--all"), hookLimit)
		if exists(filepath.Join(own, "99999")) {
			t.Errorf("the user's leftover job directory outlived sweep --all")
		}
	}},
	{"the cleanup child killed or lying (a forged child that removes nothing): the job directory outlives the Epilog", func(t *testing.T, n *node) {
		n.kernel("k", containerKernel("k", filepath.Join(n.mallory.home, "files/img.sif")))
		n.expect0(n.hook("prolog_slurmd", "211", n.mallory), hookLimit)
		n.asMallory(fmt.Sprintf("mkdir -p %s/jobs/211/a/b && touch %s/jobs/211/a/b/c", n.cache, n.cache))
		n.installForge()
		n.expect0(n.hook("epilog_slurmd", "211", n.mallory), hookLimit)
		if exists(filepath.Join(n.cache, "jobs/211")) {
			t.Error("jobs/211 outlived the Epilog")
		}
	}},
	{"three thousand leftovers and every sweep child stopped: sweep runs for an hour", func(t *testing.T, n *node) {
		n.expect0(n.hook("prolog_slurmd", "212", n.mallory), hookLimit)
		jobs := filepath.Join(n.cache, "jobs")
		n.leftovers(3000)
		plain := n.command("sweep", "--all")
		n.expect0(plain, hookLimit)
		t.Logf("sweep --all over 3001 leftovers: %v", plain.dur.Round(time.Millisecond))
		n.leftovers(3000)
		stop := filepath.Join(n.mallory.home, "files", "stop")
		stopper := n.malloryCmd(fmt.Sprintf(`while [ ! -e %s ]; do pkill -STOP -u %d -f 'internal [u]ser-sweep' 2>/dev/null; sleep 0.01; done`, stop, n.mallory.uid))
		testkit.Must(t, stopper.Start())
		defer func() { _ = os.WriteFile(stop, nil, 0o644); _ = stopper.Wait() }() // on a failed run: stop it whatever
		r := n.command("sweep", "--all", "--budget", "20s")
		testkit.Must(t, os.WriteFile(stop, nil, 0o644))
		testkit.Must(t, stopper.Wait())
		n.expect0(r, 40*time.Second)
		t.Logf("sweep --all over 3001 leftovers, the user's child stopped: %v", r.dur.Round(time.Millisecond))
		if left, _ := os.ReadDir(jobs); len(left) != 0 {
			t.Errorf("%d job directories left after sweep", len(left))
		}
	}},
}

// leftovers makes count job directories of mallory's that no Epilog
// removed (a crash), each with a directory and a file.
func (n *node) leftovers(count int) {
	t := n.t
	for i := range count {
		d := filepath.Join(n.cache, "jobs", strconv.Itoa(100000+i))
		testkit.Must(t, os.MkdirAll(filepath.Join(d, "jupyter"), 0o700))
		testkit.Must(t, os.WriteFile(filepath.Join(d, "node.json"), []byte("{}"), 0o600))
		for _, p := range []string{d, filepath.Join(d, "jupyter"), filepath.Join(d, "node.json")} {
			testkit.Must(t, os.Lchown(p, n.mallory.uid, n.mallory.gid))
		}
	}
}

// installForge puts the forging build in place of the hooks' binary (see
// cmd/sifkernel/forge.go): root's side unchanged, the user's child forged.
func (n *node) installForge() {
	data, err := os.ReadFile(forgeBinary)
	testkit.Must(n.t, err)
	testkit.Must(n.t, os.WriteFile(n.bin+".new", data, 0o755))
	testkit.Must(n.t, os.Rename(n.bin+".new", n.bin))
	n.before = n.snapshot()
}

// logSince is what the log gained past offset.
func (n *node) logSince(offset int64) string {
	data := testkit.ReadFile(n.t, n.log)
	if int64(len(data)) < offset {
		return ""
	}
	return string(data[offset:])
}

// deepAsMallory nests depth directories below dir as mallory, far past
// PATH_MAX (python works relative to the current directory).
func (n *node) deepAsMallory(dir string, depth int) {
	n.asMallory(fmt.Sprintf(`/usr/bin/python3 -c '
import os
os.chdir(%q)
for i in range(%d):
    os.mkdir("d"); os.chdir("d")
open("f", "w").close()
'`, dir, depth))
}

// userCmd runs a shell script as a, with a login-like environment.
func (n *node) userCmd(a account, script string) *exec.Cmd {
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + a.home, "USER=" + a.name, "SIFKERNEL_CONFIG=" + n.config}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(a.uid), Gid: uint32(a.gid)}}
	return cmd
}

// fuseMountAsVictim mounts, as mallory, a squashfs whose inodes claim the
// victim's uid and a far-future mtime over mallory's own job directory
// (FUSE, allow_other: fuse.conf's user_allow_other is set for the test),
// then checks the victim's login and every root hook, with the FUSE
// daemon running and then stopped.
func (n *node) fuseMountAsVictim(t *testing.T, job string) {
	for _, tool := range []string{"/usr/bin/squashfuse", "/usr/bin/mksquashfs", "/usr/bin/fusermount"} {
		if _, err := os.Stat(tool); err != nil {
			testkit.Skip(t, tool+" is needed (squashfuse, squashfs-tools, fuse)")
		}
	}
	n.kernel("k", containerKernel("k", filepath.Join(n.mallory.home, "files/img.sif")))
	n.expect0(n.hook("prolog_slurmd", job, n.mallory), hookLimit)
	src := filepath.Join(n.base, "fuse-src")
	evil := filepath.Join(src, "jupyter/kernels/evil")
	testkit.Must(t, os.MkdirAll(evil, 0o755))
	testkit.Must(t, os.WriteFile(filepath.Join(src, "node.json"), []byte(`{"job":"`+job+`"}`), 0o644))
	testkit.Must(t, os.WriteFile(filepath.Join(evil, "kernel.json"), []byte(`{"argv":["/bin/sh","-c","touch /tmp/pwned"],"display_name":"evil","language":"python"}`), 0o644))
	img := filepath.Join(n.mallory.home, "files", "evil.sqfs")
	if out, err := exec.Command("/usr/bin/mksquashfs", src, img, "-noappend", "-quiet", "-force-uid", strconv.Itoa(n.victim.uid),
		"-force-gid", strconv.Itoa(n.victim.gid), "-all-time", "4102444800").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
	testkit.Must(t, os.Chown(img, n.mallory.uid, n.mallory.gid))
	conf, confErr := os.ReadFile("/etc/fuse.conf")
	testkit.Must(t, os.WriteFile("/etc/fuse.conf", append(append([]byte{}, conf...), "\nuser_allow_other\n"...), 0o644))
	mnt := filepath.Join(n.cache, "jobs", job)
	t.Cleanup(func() {
		// Whatever the test left: a stopped squashfuse, its mount (or none:
		// the Epilog may have gone round it), the process. Each may be gone.
		_ = exec.Command("pkill", "-CONT", "-u", strconv.Itoa(n.mallory.uid), "squashfuse").Run()
		_ = unix.Unmount(mnt, unix.MNT_DETACH)
		_ = exec.Command("pkill", "-KILL", "-u", strconv.Itoa(n.mallory.uid), "squashfuse").Run()
		if confErr == nil {
			testkit.Must(t, os.WriteFile("/etc/fuse.conf", conf, 0o644))
		} else {
			testkit.Must(t, os.Remove("/etc/fuse.conf"))
		}
	})
	n.asMallory(fmt.Sprintf("/usr/bin/squashfuse -o allow_other %s %s", img, mnt))
	if st, err := os.Stat(filepath.Join(mnt, "node.json")); err != nil || int(st.Sys().(*syscall.Stat_t).Uid) != n.victim.uid {
		t.Fatalf("the FUSE mount did not come up as the attack needs: %v", err)
	}
	victimEnv := func() {
		t.Helper()
		start := time.Now()
		out, err := n.userCmd(n.victim, n.bin+" env").CombinedOutput()
		if time.Since(start) > fast {
			t.Errorf("the victim's sifkernel env took %v", time.Since(start))
		}
		if strings.Contains(string(out), "jobs/"+job) {
			t.Errorf("the victim's login was given the attacker's mounted directory (err %v):\n%s", err, out)
		}
	}
	victimEnv()
	n.asMallory("pkill -STOP -x squashfuse")
	time.Sleep(2 * time.Second) // past FUSE's attribute cache: a question now waits for the stopped daemon
	victimEnv()
	n.expect0(n.hook("epilog_slurmd", job, n.mallory), fast)
	n.expect0(n.command("sweep"), fast)
	n.expect0(n.command("sweep", "--all"), fast)
	n.expect0(n.command("metrics"), fast)
	n.logSays("mount point")
}
