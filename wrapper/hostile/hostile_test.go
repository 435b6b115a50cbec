package hostile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

// fast is how long a hook may take when what it met could have blocked it
// (a FIFO, a device): it must refuse at once, not wait out a budget.
const fast = 5 * time.Second

// Each attack is one subtest named for the attacker's goal. Every attack
// ends by checking that root's and the victim's files are unchanged.
func TestHostileUser(t *testing.T) {
	for _, a := range attacks {
		t.Run(a.goal, func(t *testing.T) {
			n := newNode(t)
			n.goal = a.goal
			a.run(t, n)
			n.intact()
		})
	}
}

type attack struct {
	goal string
	run  func(t *testing.T, n *node)
}

// squat makes the cache root before any hook does, as any user can under
// /tmp after a reboot, with jobs/ and users/ pointing where they like.
func (n *node) squat(jobs, users string) {
	n.asMallory(fmt.Sprintf("mkdir -p %s && ln -s %s %s/jobs && ln -s %s %s/users", n.cache, jobs, n.cache, users, n.cache))
}

var attacks = []attack{
	{"squatted cache root with jobs linked to a victim's runs: the Epilog empties them", func(t *testing.T, n *node) {
		n.squat(filepath.Join(n.victim.home, "runs"), n.rootDir)
		n.expect0(n.hook("epilog_slurmd", "001", n.mallory), hookLimit)
		n.logSays("not trusted")
	}},
	{"squatted cache root with jobs linked to a victim's runs: sweep --all empties them", func(t *testing.T, n *node) {
		n.squat(filepath.Join(n.victim.home, "runs"), n.rootDir)
		r := n.command("sweep", "--all")
		n.expect0(r, hookLimit)
		n.logSays("not trusted")
	}},
	{"squatted cache root with jobs linked to a victim's runs: the cron sweep empties them", func(t *testing.T, n *node) {
		n.squat(filepath.Join(n.victim.home, "runs"), n.rootDir)
		n.expect0(n.command("sweep"), hookLimit)
		n.logSays("not trusted")
	}},
	{"squatted cache root with jobs linked to root's directory: the Epilog deletes root's file", func(t *testing.T, n *node) {
		n.squat(n.rootDir, n.rootDir)
		n.expect0(n.hook("epilog_slurmd", "101", n.mallory), hookLimit)
	}},
	{"squatted cache root with users linked to root's directory: the Prolog makes the attacker a directory there", func(t *testing.T, n *node) {
		n.squat(n.rootDir, n.rootDir)
		n.kernel("k", containerKernel("k", filepath.Join(n.mallory.home, "files/img.sif")))
		n.expect0(n.hook("prolog_slurmd", "102", n.mallory), hookLimit)
		n.logSays("node fault cache_root")
	}},
	{"squatted cache root with a job directory planted for the victim's job: the victim's TaskProlog runs the attacker's kernels", func(t *testing.T, n *node) {
		planted := filepath.Join(n.cache, "jobs", "103")
		n.asMallory(fmt.Sprintf("mkdir -p %s/jupyter/kernels/python3 && echo '{}' >%s/node.json && chmod -R a+rX %s", planted, planted, n.cache))
		r := n.hook("prolog_task", "103", n.victim)
		n.expect0(r, hookLimit)
		if strings.Contains(r.out, planted) {
			t.Errorf("the victim's task was pointed at the planted directory:\n%s", r.out)
		}
	}},
	{"job directory and its contents swapped for links to the victim's and root's files while the Epilog's child runs", func(t *testing.T, n *node) {
		n.kernel("k", containerKernel("k", filepath.Join(n.mallory.home, "files/img.sif")))
		jobs := filepath.Join(n.cache, "jobs")
		stop := filepath.Join(n.mallory.home, "files", "stop")
		racer := n.malloryCmd(fmt.Sprintf(`end=$(( $(date +%%s) + 120 ))
while [ ! -e %[4]s ] && [ $(date +%%s) -lt $end ]; do
  for j in 2001 2002 2003 2004 2005; do
    mv -T %[1]s/$j %[1]s/x 2>/dev/null; ln -sfn %[2]s %[1]s/$j 2>/dev/null
    if [ -d %[1]s/$j/jupyter ] && [ ! -L %[1]s/$j/jupyter ]; then
      mv %[1]s/$j/jupyter %[1]s/$j/old 2>/dev/null
      ln -sfn %[2]s %[1]s/$j/jupyter 2>/dev/null; ln -sfn %[3]s %[1]s/$j/rootdir 2>/dev/null
    fi
  done
done
true`, jobs, filepath.Join(n.victim.home, "runs"), n.rootDir, stop))
		if err := racer.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = os.WriteFile(stop, nil, 0o644); _ = racer.Wait() }() // on a failed run: stop the racer whatever
		for round := range 4 {
			for _, job := range []string{"2001", "2002", "2003", "2004", "2005"} {
				n.expect0(n.hook("prolog_slurmd", job, n.mallory), hookLimit)
				n.expect0(n.hook("epilog_slurmd", job, n.mallory), hookLimit)
			}
			t.Logf("round %d done", round)
		}
		testkit.Must(t, os.WriteFile(stop, nil, 0o644))
		// The racer's last link may fail (a swap of its own got there
		// first): it ends with true, so an error here is only a racer
		// that did not run to its end.
		testkit.Must(t, racer.Wait())
		n.expect0(n.command("sweep", "--all"), hookLimit)
		left, _ := os.ReadDir(jobs)
		if len(left) != 0 {
			t.Errorf("sweep --all left %d entries in %s", len(left), jobs)
		}
	}},
	{"hard links to root's secret in the job and cache directories: cleanup removes or reads root's file", func(t *testing.T, n *node) {
		n.kernel("k", containerKernel("k", filepath.Join(n.mallory.home, "files/img.sif")))
		n.expect0(n.hook("prolog_slurmd", "104", n.mallory), hookLimit)
		// protected_hardlinks stops a user making these; root makes them here
		// to stand for a node where it is off.
		userDir := filepath.Join(n.cache, "users", fmt.Sprint(n.mallory.uid))
		for _, p := range []string{filepath.Join(n.cache, "jobs/104/secret"), filepath.Join(userDir, "img-0123456789abcdef.sif"), filepath.Join(userDir, "jobs/9/x")} {
			n.asMallory("mkdir -p " + filepath.Dir(p))
			testkit.Must(t, os.Link(filepath.Join(n.rootDir, "secret"), p))
		}
		n.expect0(n.hook("epilog_slurmd", "104", n.mallory), hookLimit)
		n.expect0(n.command("sweep", "--all"), hookLimit)
		n.noSecretInLog()
	}},
	{"a FIFO as kernel.json: the Prolog hangs until Slurm kills it", func(t *testing.T, n *node) {
		dir := n.kernel("fifo", "")
		n.asMallory("mkfifo " + filepath.Join(dir, "kernel.json"))
		n.expect0(n.hook("prolog_slurmd", "105", n.mallory), fast)
		n.logSays("named pipe")
	}},
	{"a socket as kernel.json: the Prolog hangs or errors out", func(t *testing.T, n *node) {
		dir := n.kernel("sock", "")
		n.asMallory(fmt.Sprintf(`/usr/bin/python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind("%s/kernel.json")'`, dir))
		n.expect0(n.hook("prolog_slurmd", "106", n.mallory), fast)
		n.logSays("a socket")
	}},
	{"/dev/zero as kernel.json: the Prolog reads without end", func(t *testing.T, n *node) {
		dir := n.kernel("zero", "")
		n.asMallory("ln -s /dev/zero " + filepath.Join(dir, "kernel.json"))
		n.expect0(n.hook("prolog_slurmd", "107", n.mallory), fast)
		n.logSays("character device")
	}},
	{"a FIFO as a kernel's logo: copying resources hangs the Prolog", func(t *testing.T, n *node) {
		dir := n.kernel("logo", containerKernel("logo", filepath.Join(n.mallory.home, "files/img.sif")))
		n.asMallory("mkfifo " + filepath.Join(dir, "logo-64x64.png"))
		n.expect0(n.hook("prolog_slurmd", "108", n.mallory), fast)
		n.logSays(`kernel \"logo\" uses the staged`)
	}},
	{"a FIFO as the image: staging hangs the Prolog for its whole budget", func(t *testing.T, n *node) {
		fifo := filepath.Join(n.mallory.home, "files/fifo.sif")
		n.asMallory("mkfifo " + fifo)
		n.kernel("k", containerKernel("k", fifo))
		n.expect0(n.hook("prolog_slurmd", "109", n.mallory), fast)
		n.logSays("named pipe")
	}},
	{"/dev/zero as the image: staging copies without end", func(t *testing.T, n *node) {
		n.kernel("k", containerKernel("k", "/dev/zero"))
		n.expect0(n.hook("prolog_slurmd", "110", n.mallory), fast)
		n.logSays("character device")
	}},
	{"a FIFO as the user config: the Prolog's child hangs reading it", func(t *testing.T, n *node) {
		n.kernel("k", containerKernel("k", filepath.Join(n.mallory.home, "files/img.sif")))
		n.asMallory("mkdir -p ~/.config/sifkernel && mkfifo ~/.config/sifkernel/config.toml")
		n.expect0(n.hook("prolog_slurmd", "111", n.mallory), fast)
		n.logSays("named pipe")
	}},
	{"a FIFO as the TaskProlog's lock file: every task of the job hangs", func(t *testing.T, n *node) {
		n.kernel("k", containerKernel("k", filepath.Join(n.mallory.home, "files/img.sif")))
		testkit.Must(t, os.MkdirAll(n.cache, 0o755)) // root made the cache once; no Prolog runs
		lockDir := filepath.Join(n.mallory.home, "files", "tmp", "sifkernel-"+fmt.Sprint(n.mallory.uid), "users", fmt.Sprint(n.mallory.uid), "jobs")
		n.asMallory(fmt.Sprintf("mkdir -p %s && chmod -R 700 %s/files/tmp/sifkernel-%d && mkfifo %s/112.lock", lockDir, n.mallory.home, n.mallory.uid, lockDir))
		r := n.hook("prolog_task", "112", n.mallory, "TMPDIR="+filepath.Join(n.mallory.home, "files", "tmp"))
		n.expect0(r, fast)
	}},
	{"every kind of file that blocks or never ends, in every place a hook reads: one of them hangs the Prolog", func(t *testing.T, n *node) {
		kinds := map[string]string{
			"a FIFO":             "mkfifo %s",
			"a socket":           `/usr/bin/python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' %s`,
			"/dev/null (device)": "ln -s /dev/null %s",
			"/dev/zero":          "ln -s /dev/zero %s",
		}
		img := filepath.Join(n.mallory.home, "files/img.sif")
		places := map[string]func(bad string){
			"kernel.json": func(bad string) { n.asMallory(fmt.Sprintf(bad, filepath.Join(n.kernel("k", ""), "kernel.json"))) },
			"a resource": func(bad string) {
				n.asMallory(fmt.Sprintf(bad, filepath.Join(n.kernel("k", containerKernel("k", img)), "logo-64x64.png")))
			},
			"the image": func(bad string) {
				p := filepath.Join(n.mallory.home, "files/bad.sif")
				n.asMallory(fmt.Sprintf(bad, p))
				n.kernel("k", containerKernel("k", p))
			},
			"the user config": func(bad string) {
				n.kernel("k", containerKernel("k", img))
				n.asMallory("mkdir -p ~/.config/sifkernel && " + fmt.Sprintf(bad, "~/.config/sifkernel/config.toml"))
			},
		}
		job := 4000
		for kind, bad := range kinds {
			for place, plant := range places {
				n.asRootRemove(n.mallory.home, ".local", ".config", "files/bad.sif")
				plant(bad)
				job++
				if r := n.hook("prolog_slurmd", fmt.Sprint(job), n.mallory); r.code != 0 || r.dur > fast {
					t.Errorf("%s as %s: exit %d after %v", kind, place, r.code, r.dur)
				}
			}
		}
	}},
	{"a thousand kernels with megabyte strings: the root hook's memory and log grow without bound", func(t *testing.T, n *node) {
		small := n.manyKernels(10)
		n.resetHomes()
		big := n.manyKernels(1000)
		for _, r := range []result{small, big} {
			n.expect0(r, hookLimit)
		}
		if big.logBytes > 128<<10 {
			t.Errorf("1,000 kernels wrote %d bytes of log, want at most 128 KiB (10 kernels: %d)", big.logBytes, small.logBytes)
		}
		// Root's memory must not grow with the user's kernels; the child's is
		// the user's own, bounded by the kernel.json budget and max_per_job.
		if big.rootRSSKiB > small.rootRSSKiB+8<<10 || big.rootRSSKiB > 48<<10 {
			t.Errorf("root's peak RSS %d KiB with 1,000 kernels, %d KiB with 10: not small and flat", big.rootRSSKiB, small.rootRSSKiB)
		}
		if big.maxRSSKiB > 160<<10 || big.maxRSSKiB == 0 {
			t.Errorf("the user part's peak RSS is %d KiB with 1,000 kernels, want at most 160 MiB (0: it was not seen)", big.maxRSSKiB)
		}
		n.logSays("more container kernels skipped: kernel.max_per_job is 64")
		t.Logf("10 kernels: root %d KiB, with child %d KiB, %d log bytes; 1,000 kernels: root %d KiB, with child %d KiB, %d log bytes",
			small.rootRSSKiB, small.maxRSSKiB, small.logBytes, big.rootRSSKiB, big.maxRSSKiB, big.logBytes)
	}},
	{"hostile job ids: the hooks create or delete outside the jobs directory", func(t *testing.T, n *node) {
		for _, id := range []string{"../../rootdir", "101/../../../rootdir", "1\n2", "", "-1", "123456789012345678901234", "101 ", "../rootdir/secret"} {
			n.expect0(n.hook("prolog_slurmd", id, n.mallory), hookLimit)
			n.expect0(n.hook("epilog_slurmd", id, n.mallory), hookLimit)
		}
		if _, err := os.Stat(filepath.Join(n.cache, "jobs")); err == nil {
			ents, _ := os.ReadDir(filepath.Join(n.cache, "jobs"))
			if len(ents) != 0 {
				t.Errorf("hostile ids made %d job directories", len(ents))
			}
		}
	}},
	{"newlines and terminal escapes in kernel names and image paths: forged log lines", func(t *testing.T, n *node) {
		evil := "x\ntime=\"2026-01-01T00:00:00Z\" level=info msg=\"forged\"\x1b[2J\x1b]0;pwned\x07"
		n.kernel("nl\nname\x1b[31m", containerKernel("e", "/nonexistent/"+evil))
		n.kernel("plain", containerKernel("p", "/nonexistent/"+evil))
		n.expect0(n.hook("prolog_slurmd", "113", n.mallory), hookLimit)
		data := testkit.ReadFile(t, n.log)
		for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			if !strings.HasPrefix(line, "time=") || strings.Contains(line, "msg=\"forged\"") {
				t.Errorf("log line %d is not one of sifkernel's: %q", i+1, line)
			}
		}
		if strings.ContainsAny(string(data), "\x1b\x07") {
			t.Error("a terminal escape reached the log")
		}
	}},
	{"a config beside the binary that the attacker can replace: root uses the attacker's cache root and squeue", func(t *testing.T, n *node) {
		if _, err := os.Stat("/etc/sifkernel/config.toml"); err == nil {
			t.Fatal("/etc/sifkernel/config.toml exists here: the config beside the binary is not used, so this attack cannot be tried")
		}
		marker := filepath.Join(n.mallory.home, "files", "ran-as-root")
		evil := filepath.Join(n.mallory.home, "files", "squeue")
		testkit.Must(t, os.WriteFile(evil, []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755))
		testkit.Must(t, os.Chown(evil, n.mallory.uid, n.mallory.gid))
		etc := filepath.Dir(n.config)
		testkit.Must(t, os.Chown(etc, n.mallory.uid, n.mallory.gid)) // a careless install: the attacker owns etc/sifkernel
		n.asMallory(fmt.Sprintf("rm -f %[1]s && printf '[cache]\\ndir = \"%[2]s/files/mycache\"\\n[slurm]\\nsqueue = \"%[3]s\"\\n' >%[1]s", n.config, n.mallory.home, evil))
		n.before = n.snapshot() // the attacker's config is the attacker's doing
		n.useInstalledConfig = true
		defaultsMadeRoot := !exists("/tmp/sifkernel")
		r := n.hook("prolog_slurmd", "114", n.mallory)
		n.expect0(r, hookLimit)
		n.hook("epilog_slurmd", "114", n.mallory)
		if defaultsMadeRoot {
			// The defaults' root in /tmp, which this attack made: empty once
			// the Epilog ran; what is not empty is the next check's to see.
			_ = os.Remove("/tmp/sifkernel/jobs")
			_ = os.Remove("/tmp/sifkernel/users/" + fmt.Sprint(n.mallory.uid))
		}
		if !strings.Contains(r.out, "is not used as root") {
			t.Errorf("the Prolog did not say why it ignored the config:\n%s", r.out)
		}
		if s := n.command("sweep"); s.code == 0 || !strings.Contains(s.out, "is not used as root") {
			t.Errorf("sweep with the attacker's config: exit %d, want a refusal:\n%s", s.code, s.out)
		}
		if exists(marker) || exists(filepath.Join(n.mallory.home, "files/mycache")) {
			t.Error("root used the attacker's config")
		}
	}},
	{"a root config naming an squeue the attacker owns: sweep runs it as root", func(t *testing.T, n *node) {
		marker := filepath.Join(n.mallory.home, "files", "ran-as-root")
		evil := filepath.Join(n.mallory.home, "files", "squeue")
		n.asMallory(fmt.Sprintf("printf '#!/bin/sh\\ntouch %s\\n' >%s && chmod 755 %s", marker, evil, evil))
		n.configText = strings.Replace(n.configText, filepath.Join(n.base, "bin", "squeue"), evil, 1)
		n.setConfig("")
		n.before = n.snapshot()
		if r := n.command("sweep"); r.code == 0 || !strings.Contains(r.out, "not running slurm.squeue as root") {
			t.Errorf("sweep: exit %d, want a refusal:\n%s", r.code, r.out)
		}
		if exists(marker) {
			t.Error("root ran the attacker's program")
		}
	}},
	{"a loosened users/<uid> with fail_node_on = cache_root: one user drains every node they land on", func(t *testing.T, n *node) {
		n.setConfig("[prolog]\nfail_node_on = [\"cache_root\"]\n")
		n.before = n.snapshot()
		n.kernel("k", containerKernel("k", filepath.Join(n.mallory.home, "files/img.sif")))
		n.expect0(n.hook("prolog_slurmd", "115", n.mallory), hookLimit)
		n.expect0(n.hook("epilog_slurmd", "115", n.mallory), hookLimit)
		userDir := filepath.Join(n.cache, "users", fmt.Sprint(n.mallory.uid))
		n.asMallory("chmod 777 " + userDir)
		n.expect0(n.hook("prolog_slurmd", "116", n.mallory), hookLimit)
		if st, err := os.Stat(userDir); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v, want mode 0700 again", userDir, st.Mode(), err)
		}
		n.logSays(`kernel \"k\" uses the staged`)
	}},
	{"kernel.json a link to root's secret: the Prolog's log or job copy leaks it", func(t *testing.T, n *node) {
		dir := n.kernel("leak", "")
		n.asMallory(fmt.Sprintf("ln -s %s %s/kernel.json", filepath.Join(n.rootDir, "secret"), dir))
		n.expect0(n.hook("prolog_slurmd", "117", n.mallory), hookLimit)
		n.logSays("permission denied")
		n.noSecretInLog()
		n.noSecretUnder(n.cache)
	}},
	{"the image a link to root's secret: staging copies it into the attacker's cache", func(t *testing.T, n *node) {
		link := filepath.Join(n.mallory.home, "files/secret.sif")
		n.asMallory(fmt.Sprintf("ln -s %s %s", filepath.Join(n.rootDir, "secret"), link))
		n.kernel("k", containerKernel("k", link))
		n.expect0(n.hook("prolog_slurmd", "118", n.mallory), hookLimit)
		n.logSays("permission denied")
		n.noSecretUnder(n.cache)
	}},
	{"twenty thousand files in the job directory: the Epilog runs past Slurm's timeout", func(t *testing.T, n *node) {
		n.kernel("k", containerKernel("k", filepath.Join(n.mallory.home, "files/img.sif")))
		n.expect0(n.hook("prolog_slurmd", "119", n.mallory), hookLimit)
		dir := filepath.Join(n.cache, "jobs/119")
		n.asMallory(fmt.Sprintf("cd %s && mkdir -p deep/a/b/c && for i in $(seq 1 200); do mkdir d$i; (cd d$i && touch $(seq 1 100)); done", dir))
		n.expect0(n.hook("epilog_slurmd", "119", n.mallory), hookLimit)
		if exists(dir) {
			t.Errorf("%s is still there", dir)
		}
	}},
	{"a newline in JUPYTER_PATH: the TaskProlog injects an export into the task", func(t *testing.T, n *node) {
		n.kernel("k", containerKernel("k", filepath.Join(n.mallory.home, "files/img.sif")))
		n.expect0(n.hook("prolog_slurmd", "120", n.mallory), hookLimit)
		r := n.hook("prolog_task", "120", n.mallory, "JUPYTER_PATH=/x\nexport LD_PRELOAD=/tmp/evil.so")
		n.expect0(r, hookLimit)
		if strings.Contains(r.out, "LD_PRELOAD") {
			t.Errorf("the TaskProlog printed an injected line:\n%s", r.out)
		}
	}},
	{"the site's log file, in a directory users may write, made a link to root's file or a FIFO: root appends to it or hangs", func(t *testing.T, n *node) {
		logDir := filepath.Dir(n.log)
		testkit.Must(t, os.Chmod(logDir, os.ModeSticky|0o777)) // a careless site: /var/tmp-like
		n.asMallory("ln -s " + filepath.Join(n.rootDir, "101") + " " + n.log)
		n.kernel("k", containerKernel("k", filepath.Join(n.mallory.home, "files/img.sif")))
		n.expect0(n.hook("prolog_slurmd", "122", n.mallory), hookLimit)
		n.asMallory("rm -f " + n.log + " && mkfifo " + n.log)
		n.expect0(n.hook("epilog_slurmd", "122", n.mallory), fast)
	}},
	{"a megabyte of nested brackets as kernel.json: the parser exhausts the Prolog's stack or time", func(t *testing.T, n *node) {
		n.kernel("bomb", strings.Repeat("[", 1<<20-1))
		n.expect0(n.hook("prolog_slurmd", "121", n.mallory), fast)
		n.logSays(`kernel \"bomb\" skipped`)
	}},
}

// manyKernels gives mallory count container kernels, all links to one
// kernel.json of almost a megabyte, and runs a Prolog.
func (n *node) manyKernels(count int) result {
	files := filepath.Join(n.mallory.home, "files")
	long := "/" + strings.Repeat("very-long-directory-name/", (1<<20-4096)/25) + "img.sif"
	shared := filepath.Join(files, "big-kernel.json")
	testkit.Must(n.t, os.WriteFile(shared, []byte(containerKernel("big", long)), 0o644))
	kernels := filepath.Join(n.mallory.home, ".local/share/jupyter/kernels")
	for i := range count {
		name := fmt.Sprintf("k%04d-%s", i, strings.Repeat("n", 200))
		testkit.Must(n.t, os.MkdirAll(filepath.Join(kernels, name), 0o755))
		testkit.Must(n.t, os.Symlink(shared, filepath.Join(kernels, name, "kernel.json")))
	}
	n.chownTree(n.mallory.home, n.mallory)
	return n.hook("prolog_slurmd", fmt.Sprint(3000+count), n.mallory)
}

func (n *node) noSecretInLog() {
	n.t.Helper()
	if data := testkit.ReadFile(n.t, n.log); strings.Contains(string(data), rootSecret) {
		n.t.Error("root's secret is in the log")
	}
}

// noSecretUnder checks no file below dir holds root's secret.
func (n *node) noSecretUnder(dir string) {
	n.t.Helper()
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error { // the callback sees every error
		if err != nil || !info.Mode().IsRegular() {
			return nil
		}
		if st := info.Sys().(*syscall.Stat_t); st.Uid == 0 && info.Name() == "secret" {
			return nil // one of root's own links, made by the test
		}
		if data := testkit.ReadOptional(n.t, p); strings.Contains(string(data), rootSecret) {
			n.t.Errorf("%s holds root's secret", p)
		}
		return nil
	})
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
