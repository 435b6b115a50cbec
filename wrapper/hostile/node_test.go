package hostile

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/sifimage"
)

// binary is sifkernel, built once for the suite; forgeBinary is the same
// with children that do what a user who traces them could make them do
// (see cmd/sifkernel/forge.go).
var binary, forgeBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sifkernel-hostile-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The forge binary has a directory of its own: no sifkernel-cleanup
	// beside it, so its Epilog's cleanup child is forged too. The real one
	// has the cleanup child beside it, as make build lays them out.
	binary, forgeBinary = filepath.Join(dir, "sifkernel"), filepath.Join(dir, "forge", "sifkernel-forge")
	for _, b := range [][]string{{"-o", binary, "../cmd/sifkernel"}, {"-o", filepath.Join(dir, "sifkernel-cleanup"), "../cmd/sifkernel-cleanup"},
		{"-tags", "sifkernel_forge", "-o", forgeBinary, "../cmd/sifkernel"}} {
		if out, err := exec.Command("go", append([]string{"build"}, b...)...).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", b[len(b)-1], err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintf(os.Stderr, "removing %s: %v\n", dir, err)
	}
	writeTable()
	os.Exit(code)
}

// account is a real user of this machine.
type account struct {
	name     string
	uid, gid int
	home     string
}

var usersOnce sync.Mutex

// ensureUser adds a user (with a home) if the machine lacks it.
func ensureUser(t *testing.T, name string) account {
	t.Helper()
	usersOnce.Lock()
	defer usersOnce.Unlock()
	if _, err := user.Lookup(name); err != nil {
		if out, err := exec.Command("useradd", "-m", "-s", "/bin/sh", name).CombinedOutput(); err != nil {
			t.Fatalf("useradd %s: %v\n%s", name, err, out)
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	a := account{name: name, home: u.HomeDir}
	a.uid, _ = strconv.Atoi(u.Uid)
	a.gid, _ = strconv.Atoi(u.Gid)
	return a
}

// node is one compute node as the hooks see it: an installed binary and
// config, a sticky tmp directory where the cache root lives (as /tmp does),
// root's files and a victim's files that no attack may change.
type node struct {
	t                  *testing.T
	base, tmp, cache   string
	bin, config, log   string
	rootDir            string
	mallory, victim    account
	configText         string
	useInstalledConfig bool   // no SIFKERNEL_CONFIG: the config beside the binary
	goal               string // the attack, for the table
	before             map[string]string
	extraFiles         []*os.File // descriptors the next hooks inherit (fd 3 on)
}

const rootSecret = "ROOT-SECRET-7f3a"

func newNode(t *testing.T) *node {
	t.Helper()
	if os.Geteuid() != 0 {
		testkit.Skip(t, "the hostile-user suite runs hooks as root and attacks as real users")
	}
	n := &node{t: t, base: testkit.SharedDir(t), mallory: ensureUser(t, "skmallory"), victim: ensureUser(t, "skvictim")}
	n.tmp = filepath.Join(n.base, "tmp")
	n.cache = filepath.Join(n.tmp, "sifkernel")
	n.bin = filepath.Join(n.base, "bin", "sifkernel")
	n.config = filepath.Join(n.base, "etc", "sifkernel", "config.toml")
	n.log = filepath.Join(n.base, "log", "sifkernel.log")
	n.rootDir = filepath.Join(n.base, "rootdir")
	testkit.Must(t, os.Mkdir(n.tmp, 0o755))
	testkit.Must(t, os.Chmod(n.tmp, os.ModeSticky|0o777))
	for _, d := range []string{"bin", "etc/sifkernel", "log", "rootdir", "opt/apptainer/bin"} {
		testkit.Must(t, os.MkdirAll(filepath.Join(n.base, d), 0o755))
	}
	data, err := os.ReadFile(binary)
	testkit.Must(t, err)
	testkit.Must(t, os.WriteFile(n.bin, data, 0o755))
	testkit.Must(t, os.WriteFile(filepath.Join(n.base, "bin", "squeue"), []byte("#!/bin/sh\nexit 0\n"), 0o755))
	testkit.Must(t, os.WriteFile(filepath.Join(n.base, "opt/apptainer/bin/apptainer"), []byte("#!/bin/sh\necho apptainer version 1.5.3\n"), 0o755))
	testkit.Must(t, os.WriteFile(filepath.Join(n.rootDir, "secret"), []byte(rootSecret), 0o600))
	for _, job := range []string{"101", "001"} {
		testkit.Must(t, os.WriteFile(filepath.Join(n.rootDir, job), []byte("root's "+job), 0o644))
	}
	// The site cache is off but for the site attacks (site_test.go): mallory's
	// home, as useradd makes it, is readable by others, and the other attacks
	// are of a user's own cache.
	n.configText = fmt.Sprintf("[apptainer]\nsearch = [%q]\ndefault_binds = []\n[cache]\ndir = %q\nreserve = \"0B\"\nlow_water = \"0B\"\nstage_timeout = \"20s\"\nsite = false\n"+
		"[slurm]\nsqueue = %q\n[log]\nlevel = \"debug\"\nfile = %q\n[metrics]\ndir = %q\n",
		filepath.Join(n.base, "opt/apptainer/bin/apptainer"), n.cache, filepath.Join(n.base, "bin", "squeue"), n.log, filepath.Join(n.base, "metrics"))
	n.setConfig("")
	n.resetHomes()
	n.before = n.snapshot()
	t.Cleanup(func() { n.asRootRemove(n.mallory.home, ".local", ".config", "files") })
	return n
}

func (n *node) setConfig(extra string) {
	testkit.Must(n.t, os.WriteFile(n.config, []byte(n.configText+extra), 0o644))
}

func (n *node) asRootRemove(dir string, names ...string) {
	for _, name := range names {
		testkit.Must(n.t, os.RemoveAll(filepath.Join(dir, name)))
	}
}

// resetHomes gives mallory an empty slate and the victim files to lose.
func (n *node) resetHomes() {
	t := n.t
	n.asRootRemove(n.mallory.home, ".local", ".config", "files")
	testkit.Must(t, os.MkdirAll(filepath.Join(n.mallory.home, "files"), 0o755))
	testkit.Must(t, sifimage.Build(filepath.Join(n.mallory.home, "files", "img.sif"), bytes.NewReader(sifimage.Minimal)))
	n.chownTree(n.mallory.home, n.mallory)
	for _, job := range []string{"001", "101", "2001"} {
		testkit.Must(t, os.MkdirAll(filepath.Join(n.victim.home, "runs", job), 0o755))
		testkit.Must(t, os.WriteFile(filepath.Join(n.victim.home, "runs", job, "data.txt"), []byte("victim's "+job), 0o644))
	}
	vk := filepath.Join(n.victim.home, ".local/share/jupyter/kernels/vk")
	testkit.Must(t, os.MkdirAll(vk, 0o755))
	testkit.Must(t, os.WriteFile(filepath.Join(vk, "kernel.json"), []byte(`{"argv": ["python3"], "display_name": "v", "language": "python"}`), 0o644))
	n.chownTree(n.victim.home, n.victim)
}

func (n *node) chownTree(dir string, a account) {
	testkit.Must(n.t, filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, a.uid, a.gid)
	}))
}

// kernel writes one of mallory's kernels: dir ~/.local/share/jupyter/kernels/NAME.
func (n *node) kernel(name, body string) string {
	dir := filepath.Join(n.mallory.home, ".local/share/jupyter/kernels", name)
	testkit.Must(n.t, os.MkdirAll(dir, 0o755))
	if body != "" {
		testkit.Must(n.t, os.WriteFile(filepath.Join(dir, "kernel.json"), []byte(body), 0o644))
	}
	n.chownTree(n.mallory.home, n.mallory)
	return dir
}

func containerKernel(name, image string) string {
	return fmt.Sprintf(`{"argv": ["/opt/apps/tacc-apptainer/1.3.3/bin/apptainer", "exec", %q, "python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": %q, "language": "python"}`, image, name)
}

// asMallory runs a shell script as mallory and fails the test if it fails.
func (n *node) asMallory(script string) {
	n.t.Helper()
	if out, err := n.malloryCmd(script).CombinedOutput(); err != nil {
		n.t.Fatalf("as mallory: %s: %v\n%s", script, err, out)
	}
}

func (n *node) malloryCmd(script string) *exec.Cmd {
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + n.mallory.home}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(n.mallory.uid), Gid: uint32(n.mallory.gid)}}
	return cmd
}

// result is one run of a hook or command during an attack.
type result struct {
	attack, hook string
	code         int
	dur          time.Duration
	// maxRSSKiB is the hook's children's peak (VmHWM, sampled while they
	// run): wait4's ru_maxrss would count the test process itself, whose
	// peak an exec of a vfork'ed child records as the child's.
	maxRSSKiB  int64
	rootRSSKiB int64 // the hook alone (VmHWM, sampled while it runs)
	logBytes   int64
	out        string
}

var (
	tableMu sync.Mutex
	table   []result
)

// hookLimit is the longest any hook may take in any attack: far below
// Slurm's PrologEpilogTimeout, and the stage budget (20 s here) included.
const hookLimit = 30 * time.Second

// hook runs the binary as slurmd runs a hook: no arguments, Slurm's
// variables only (no PATH, no HOME), as root; the TaskProlog as the job
// user with the job's environment.
func (n *node) hook(context string, job string, a account, extra ...string) result {
	n.t.Helper()
	env := []string{"SLURM_SCRIPT_CONTEXT=" + context, "SLURM_JOB_ID=" + job, "SLURM_JOB_UID=" + strconv.Itoa(a.uid),
		"SLURM_JOB_GID=" + strconv.Itoa(a.gid), "SLURM_JOB_USER=" + a.name, "SLURM_JOB_PARTITION=normal", "SLURMD_NODENAME=c001"}
	cmd := exec.Command(n.bin)
	if context == "prolog_task" {
		env = append(env, "HOME="+a.home, "USER="+a.name, "PATH=/usr/bin:/bin")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(a.uid), Gid: uint32(a.gid)}}
	}
	names := map[string]string{"prolog_slurmd": "Prolog", "epilog_slurmd": "Epilog", "prolog_task": "TaskProlog"}
	return n.run(cmd, names[context], append(env, extra...))
}

// command runs sifkernel ARGS as root, as cron or systemd would.
func (n *node) command(args ...string) result {
	n.t.Helper()
	return n.run(exec.Command(n.bin, args...), strings.Join(args, " "), nil)
}

func (n *node) run(cmd *exec.Cmd, name string, env []string) result {
	n.t.Helper()
	if !n.useInstalledConfig {
		env = append(env, "SIFKERNEL_CONFIG="+n.config)
	}
	cmd.Env = env
	cmd.Dir = "/"
	cmd.ExtraFiles = n.extraFiles
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	logBefore := fileSize(n.log)
	ctx, cancel := context.WithTimeout(context.Background(), 3*hookLimit)
	defer cancel()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	go func() { <-ctx.Done(); _ = cmd.Process.Kill() }() // gone already when it ended in time
	hwm := make(chan [2]int64)
	go func() { hwm <- sampleHWM(ctx, cmd.Process.Pid) }()
	err := cmd.Wait()
	cancel()
	peaks := <-hwm
	r := result{attack: n.goal, hook: name, dur: time.Since(start), out: out.String(), code: cmd.ProcessState.ExitCode(), rootRSSKiB: peaks[0], maxRSSKiB: peaks[1]}
	if err != nil && r.code == 0 {
		r.code = -1
	}
	r.logBytes = fileSize(n.log) - logBefore
	tableMu.Lock()
	table = append(table, r)
	tableMu.Unlock()
	return r
}

// sampleHWM reads the peak RSS (VmHWM) of a running process until it ends.
// sampleHWM samples the peak RSS (VmHWM) of pid and of its children while
// pid runs: [pid's, its children's largest].
func sampleHWM(ctx context.Context, pid int) [2]int64 {
	var peak [2]int64
	for ctx.Err() == nil {
		root, ok := vmHWM(pid)
		if !ok {
			break
		}
		peak[0] = max(peak[0], root)
		// Each thread lists the children it started (Go starts them from any).
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		for _, task := range tasks {
			kids, _ := os.ReadFile(task) // a thread that ended in between has no children
			for _, f := range strings.Fields(string(kids)) {
				if c, err := strconv.Atoi(f); err == nil {
					if kib, ok := vmHWM(c); ok {
						peak[1] = max(peak[1], kib)
					}
				}
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return peak
}

// vmHWM reads a process's peak RSS in KiB.
func vmHWM(pid int) (int64, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kib, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kib, true
		}
	}
	return 0, true
}

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

// expect0 checks a hook exited 0 within limit.
func (n *node) expect0(r result, limit time.Duration) {
	n.t.Helper()
	if r.code != 0 {
		n.t.Errorf("%s exited %d, want 0 (a failing hook drains the node):\n%s", r.hook, r.code, r.out)
	}
	if r.dur > limit {
		n.t.Errorf("%s took %v, want at most %v", r.hook, r.dur.Round(time.Millisecond), limit)
	}
}

// logSays checks the sifkernel log holds want.
func (n *node) logSays(want string) {
	n.t.Helper()
	data := testkit.ReadFile(n.t, n.log)
	if !strings.Contains(string(data), want) {
		n.t.Errorf("the log lacks %q:\n%s", want, tail(string(data), 3000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// snapshot records every file of root's and the victim's that an attack
// aims at: type, mode, owner, and content or link target.
func (n *node) snapshot() map[string]string {
	out := map[string]string{}
	for _, top := range []string{n.rootDir, n.victim.home, filepath.Join(n.base, "etc"), filepath.Join(n.base, "bin"), filepath.Join(n.base, "opt")} {
		_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error { // the callback records every error
			if err != nil {
				out[p] = "error " + err.Error()
				return nil
			}
			st, _ := os.Lstat(p)
			sys := st.Sys().(*syscall.Stat_t)
			desc := fmt.Sprintf("%v %d:%d", st.Mode(), sys.Uid, sys.Gid)
			switch {
			case st.Mode().IsRegular():
				data := testkit.ReadFile(n.t, p) // root's own tree: every file readable
				sum := sha256.Sum256(data)
				desc += " " + hex.EncodeToString(sum[:8])
			case st.Mode()&fs.ModeSymlink != 0:
				target, _ := os.Readlink(p)
				desc += " -> " + target
			}
			out[p] = desc
			return nil
		})
	}
	return out
}

// intact checks that root's and the victim's files are as they were.
func (n *node) intact() {
	n.t.Helper()
	after := n.snapshot()
	var diffs []string
	for p, was := range n.before {
		if now, ok := after[p]; !ok {
			diffs = append(diffs, "removed: "+p)
		} else if now != was {
			diffs = append(diffs, fmt.Sprintf("changed: %s: %s -> %s", p, was, now))
		}
	}
	for p := range after {
		if _, ok := n.before[p]; !ok {
			diffs = append(diffs, "added: "+p)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		n.t.Errorf("files of root or of the victim changed:\n  %s", strings.Join(diffs, "\n  "))
	}
}

// writeTable writes the suite's results, one row per attack, as a Markdown
// table to the file SIFKERNEL_HOSTILE_TABLE names (the README's table).
func writeTable() {
	path := os.Getenv("SIFKERNEL_HOSTILE_TABLE")
	if path == "" {
		return
	}
	type row struct {
		hooks       []string
		codes       map[int]int
		slowest     time.Duration
		rss, logged int64
	}
	var order []string
	rows := map[string]*row{}
	for _, r := range table {
		name := r.attack
		w, ok := rows[name]
		if !ok {
			w = &row{codes: map[int]int{}}
			rows[name] = w
			order = append(order, name)
		}
		w.hooks = append(w.hooks, strings.Fields(r.hook + " x")[0])
		w.codes[r.code]++
		w.slowest = max(w.slowest, r.dur)
		w.rss = max(w.rss, r.rootRSSKiB)
		w.logged = max(w.logged, r.logBytes)
	}
	var b strings.Builder
	b.WriteString("| attack: the attacker's goal | runs | exit codes | slowest | root's peak RSS | most log bytes |\n|---|---|---|---|---|---|\n")
	for _, name := range order {
		w := rows[name]
		var codes []string
		for c, k := range w.codes {
			codes = append(codes, fmt.Sprintf("%d (×%d)", c, k))
		}
		sort.Strings(codes)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.0f MiB | %d |\n", name, summarize(w.hooks), strings.Join(codes, ", "),
			w.slowest.Round(time.Millisecond), float64(w.rss)/1024, w.logged)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "SIFKERNEL_HOSTILE_TABLE: %v\n", err)
		os.Exit(1)
	}
}

// summarize counts repeated names: prolog ×20, epilog ×20.
func summarize(names []string) string {
	var order []string
	count := map[string]int{}
	for _, n := range names {
		if count[n] == 0 {
			order = append(order, n)
		}
		count[n]++
	}
	for i, n := range order {
		if count[n] > 1 {
			order[i] = fmt.Sprintf("%s ×%d", n, count[n])
		}
	}
	return strings.Join(order, ", ")
}
