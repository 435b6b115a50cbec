// Command soak runs many jobs through the test cluster (testcluster/up) with
// cancels, a node crash and a full disk, all under a CPU hog, then checks
// that nothing was drained, leaked or broken. testcluster/soak/run starts
// it; see the README's "Load and soak" section.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

var (
	jobs        = flag.Int("jobs", 300, "jobs to run")
	concurrency = flag.Int("concurrency", 6, "jobs queued or running at once")
	cancelShare = flag.Float64("cancel", 0.2, "share of jobs cancelled at a random moment")
	seed        = flag.Uint64("seed", uint64(time.Now().UnixNano()), "random seed (printed, to replay a run)")
	skc         = flag.String("cluster", "/var/tmp/sifkernel-cluster", "the test cluster's directory")
	nodeCache   = flag.String("node-cache", "/var/tmp/sifkernel-node-cache", "cache.dir on the nodes")
	hookBudget  = flag.Duration("hook-budget", 90*time.Second, "the longest a Prolog or Epilog may take (the test cluster's prolog.timeout, 88 s, + 2 s)")
)

var users = []string{"sktest1", "sktest2"}

// logFrom is where the sifkernel log stood when the soak began: only what
// the soak's jobs logged counts.
var logFrom int64

// The kernels every soak user has: two good ones sharing one image, and
// the broken ones a hook must survive.
var badKernels = []string{"missing", "truncated", "unreadable", "curly", "invalid", "huge", "fifo"}

type job struct {
	n        int
	user     string
	kernel   string
	opts     string
	cancel   string // "", "pending", "prolog", "running"
	id       string
	state    string
	result   string
	attempts int
	crashed  bool
	submitAt time.Time
}

func main() {
	flag.Parse()
	rng := rand.New(rand.NewPCG(*seed, 0))
	fmt.Printf("soak: %d jobs, %d at once, %.0f%% cancelled, seed %d\n", *jobs, *concurrency, *cancelShare*100, *seed)
	if st, err := os.Stat(filepath.Join(*skc, "log/sifkernel.log")); err == nil {
		logFrom = st.Size()
	}
	for _, u := range users {
		setupUser(u)
	}
	start := time.Now()
	all := make([]*job, *jobs)
	for i := range all {
		j := &job{n: i, user: users[rng.IntN(len(users))], kernel: []string{"bert", "bert2"}[rng.IntN(2)]}
		j.opts = "-p normal"
		if rng.IntN(3) == 0 {
			j.opts = "-p rtx-dev --gres=gpu:1"
		}
		if rng.Float64() < *cancelShare {
			j.cancel = []string{"pending", "prolog", "running"}[rng.IntN(3)]
		}
		all[i] = j
	}
	slots := make(chan struct{}, *concurrency)
	var wg sync.WaitGroup
	var crashed []string
	var filler sync.WaitGroup // the checks wait for the disk to be given back
	for i, j := range all {
		switch i {
		case *jobs / 4:
			filler.Go(func() { fillDisk("m2", 20*time.Second) })
		case *jobs / 2:
			crashed = crash("m1")
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			run(j, rng.Float64())
		}()
	}
	wg.Wait()
	filler.Wait()
	waitIdle(3 * time.Minute)
	for _, j := range all {
		for _, c := range crashed {
			if j.id == c {
				j.crashed = true
			}
		}
		// The scheduler keeps placing jobs while the crash happens: one
		// placed on m1 after crash listed its victims also ends NODE_FAIL,
		// and only the crash makes that state here.
		if j.state == "NODE_FAIL" && !j.crashed {
			j.crashed = true
			crashed = append(crashed, j.id)
		}
	}
	code := report(all, crashed, time.Since(start))
	for _, u := range users {
		// Leave the homes as found: other tests stage every kernel there.
		_, _ = as(u, "cd ~/.local/share/jupyter/kernels && rm -rf bert bert2 "+strings.Join(badKernels, " ")+"; rm -rf ~/soak ~/soak-*.sh ~/soak-out-*.txt")
	}
	os.Exit(code)
}

// sh runs a shell command as root and returns its output.
func sh(script string) (string, error) {
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "SLURM_CONF="+filepath.Join(*skc, "etc/slurm.conf"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func must(out string, err error) string {
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak: %v\n%s", err, out)
		os.Exit(2)
	}
	return out
}

// as runs a script as a test user in their home.
func as(u, script string) (string, error) {
	usr, err := user.Lookup(u)
	if err != nil {
		return "", err
	}
	cmd := exec.Command("runuser", "-u", u, "--", "env", "-i", "HOME="+usr.HomeDir,
		"SLURM_CONF="+filepath.Join(*skc, "etc/slurm.conf"), "PATH="+*skc+"/bin:/usr/bin:/bin", "bash", "-c", "cd ~ && "+script)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// onNode runs a script as root in a node's mount namespace (its disk).
func onNode(node, script string) (string, error) {
	pid, err := os.ReadFile(filepath.Join(*skc, "run", "node-"+node+".pid"))
	if err != nil {
		return "", err
	}
	cmd := exec.Command("nsenter", "--mount", "--target", strings.TrimSpace(string(pid)), "--", "bash", "-c", script)
	cmd.Env = append(os.Environ(), "SLURM_CONF="+filepath.Join(*skc, "etc/slurm.conf"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// setupUser gives a user the test image, two good kernels sharing it, and
// every kind of broken kernel.
func setupUser(u string) {
	img := filepath.Join(*skc, "images/python.sif")
	must(as(u, fmt.Sprintf(`set -e
rm -rf ~/.local/share/jupyter/kernels ~/soak ~/soak-*.sh ~/soak-out-*.txt && mkdir -p ~/soak
cp %s ~/soak/shared.sif && cp %s/client.py ~/client.py
sifkernel kernel add bert --image ~/soak/shared.sif --force >/dev/null
sifkernel kernel add bert2 --image ~/soak/shared.sif --force >/dev/null
for k in missing truncated unreadable; do cp ~/soak/shared.sif ~/soak/$k.sif; sifkernel kernel add $k --image ~/soak/$k.sif --force >/dev/null; done
rm ~/soak/missing.sif; truncate -s 10M ~/soak/truncated.sif; chmod 000 ~/soak/unreadable.sif
d=~/.local/share/jupyter/kernels; mkdir -p $d/curly $d/invalid $d/huge $d/fifo
printf '{“argv”: [“apptainer”, “exec”, “x.sif”, “python3”]}' >$d/curly/kernel.json
echo '{"argv": ["apptainer", "exec"' >$d/invalid/kernel.json
{ printf '{"argv": ["apptainer", "exec", "/x.sif", "python3", "-f", "{connection_file}"], "x": "'; head -c 2000000 /dev/zero | tr '\0' a; printf '"}'; } >$d/huge/kernel.json
mkfifo $d/fifo/kernel.json`, img, *skc)))
}

var jobIDPattern = regexp.MustCompile(`^[0-9]+$`)

// run submits one job, cancels it if planned, and waits for it to end.
func run(j *job, r float64) {
	script := fmt.Sprintf("/usr/bin/python3 ~/client.py %s 'print(6*7)'", j.kernel)
	out, err := as(j.user, fmt.Sprintf("cat >soak-%d.sh <<'EOF'\n#!/bin/bash\n%s\nEOF\nsbatch --parsable --no-requeue -o soak-out-%%j.txt -e soak-out-%%j.txt %s soak-%d.sh", j.n, script, j.opts, j.n))
	j.id = strings.TrimSpace(out)
	j.submitAt = time.Now()
	if err != nil || !jobIDPattern.MatchString(j.id) {
		j.state, j.result = "SUBMIT-FAILED", strings.TrimSpace(out)
		return
	}
	switch j.cancel {
	case "pending":
		_, _ = sh("scancel " + j.id)
	case "prolog":
		waitFor(j.id, 2*time.Minute, "CONFIGURING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "NODE_FAIL")
		time.Sleep(time.Duration(r * float64(300*time.Millisecond)))
		_, _ = sh("scancel " + j.id)
	case "running":
		waitFor(j.id, 2*time.Minute, "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "NODE_FAIL")
		time.Sleep(time.Duration(r * float64(5*time.Second)))
		_, _ = sh("scancel " + j.id)
	}
	j.state = waitFor(j.id, 10*time.Minute, "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE")
	usr, _ := user.Lookup(j.user)
	data, _ := os.ReadFile(filepath.Join(usr.HomeDir, "soak-out-"+j.id+".txt"))
	if _, line, ok := strings.Cut(string(data), "RESULT "); ok {
		line, _, _ = strings.Cut(line, "\n")
		var res struct {
			Out      string
			Attempts int
		}
		if json.Unmarshal([]byte(line), &res) == nil {
			j.result, j.attempts = res.Out, res.Attempts
		}
	}
	if j.result == "" {
		j.result = lastLine(string(data))
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func state(id string) string {
	out, _ := sh("scontrol show job -o " + id)
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, "JobState="); ok {
			return v
		}
	}
	return "GONE"
}

// waitFor polls a job until it is in one of states (observed state, never a fixed sleep).
func waitFor(id string, timeout time.Duration, states ...string) string {
	deadline := time.Now().Add(timeout)
	for {
		s := state(id)
		for _, w := range states {
			if s == w {
				return s
			}
		}
		if s == "GONE" || time.Now().After(deadline) {
			return s
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// fillDisk fills a node's cache disk for a while, as a runaway job would.
func fillDisk(node string, d time.Duration) {
	fmt.Printf("soak: filling %s's cache disk for %s\n", node, d)
	must(onNode(node, fmt.Sprintf("fallocate -l $(( $(df --output=avail -B1 %s | tail -1) - 8*1024*1024 )) %s/.soak-fill", *nodeCache, *nodeCache)))
	time.Sleep(d)
	_, _ = onNode(node, "rm -f "+*nodeCache+"/.soak-fill")
}

// crash kills a node's slurmd and its jobs at once, runs the boot sweep and
// brings it back; it returns the jobs that were running there.
func crash(node string) []string {
	out, _ := sh("squeue -h -w " + node + " -t RUNNING,CONFIGURING -o %i")
	victims := strings.Fields(out)
	fmt.Printf("soak: crashing %s with %d jobs on it\n", node, len(victims))
	// Everything that ran there dies at once: slurmd with the hooks it
	// runs, and each job's slurmstepd with the job's processes.
	pids := []string{fmt.Sprintf("$(cat %s/run/slurmd-%s.pid)", *skc, node)}
	for _, id := range victims {
		pids = append(pids, fmt.Sprintf("$(pgrep -f 'slurmstepd: \\[%s[.]')", id))
	}
	must(sh(`killtree() { local c; for c in $(pgrep -P "$1"); do killtree "$c"; done; kill -9 "$1" 2>/dev/null; }
for p in ` + strings.Join(pids, " ") + `; do killtree "$p"; done; true`))
	// A process a job forked while its parent was being killed escapes the
	// tree (an Apptainer starter, reparented to init, kept a kernel and its
	// squashfuse_ll holding an image): a real crash leaves none, so
	// whatever still carries a victim's SLURM_JOB_ID goes too.
	for _, id := range victims {
		must(sh(`for round in 1 2 3; do
for e in /proc/[0-9]*/environ; do
	tr '\0' '\n' <"$e" 2>/dev/null | grep -qx 'SLURM_JOB_ID=` + id + `' && kill -9 "$(basename "$(dirname "$e")")" 2>/dev/null
done
sleep 0.2
done; true`))
	}
	_, _ = sh("scontrol update nodename=" + node + " state=down reason=soak-crash")
	must(onNode(node, filepath.Join(*skc, "bin/sifkernel")+" sweep --all"))
	must(onNode(node, fmt.Sprintf("slurmd -N %s -f %s/etc/slurm.conf", node, *skc)))
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		_, _ = sh("scontrol update nodename=" + node + " state=resume")
		if st, _ := sh("sinfo -h -N -n " + node + " -o %T"); strings.Contains(st, "idle") || strings.Contains(st, "mix") || strings.Contains(st, "alloc") {
			break
		}
	}
	return victims
}

// waitIdle waits until no node is completing a job (Epilogs done).
func waitIdle(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		out, _ := sh("squeue -h -o %i; sinfo -h -N -o %T")
		if !strings.Contains(out, "comp") && strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(out, "idle", ""), "\n", "")) == "" {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// hookTimes reads how long each Prolog, TaskProlog and Epilog took.
func hookTimes() map[string][]float64 {
	out := map[string][]float64{}
	f, err := os.Open(filepath.Join(*skc, "log/sifkernel.log"))
	if err != nil {
		return out
	}
	defer f.Close()
	if _, err := f.Seek(logFrom, 0); err != nil {
		return out
	}
	hook := regexp.MustCompile(`\bhook=(\w+)`)
	took := regexp.MustCompile(`\btook_ms=([0-9]+)`)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.Contains(l, `msg=finished`) {
			continue
		}
		h, t := hook.FindStringSubmatch(l), took.FindStringSubmatch(l)
		if h != nil && t != nil {
			ms, _ := strconv.ParseFloat(t[1], 64)
			out[h[1]] = append(out[h[1]], ms)
		}
	}
	return out
}

func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// staging sums the Prolog's copies and hits from its log, and the hooks'
// low-water rounds (see lifecycle/reclaim.go): how many, the idle entries
// they evicted, and how many fell short (the disk full of what no hook may
// remove, as during the full-disk phase).
func staging() (copies, hits int, bytes int64, rounds, evicted, short int) {
	data, _ := os.ReadFile(filepath.Join(*skc, "log/sifkernel.log"))
	data = data[min(int64(len(data)), logFrom):]
	cb := regexp.MustCompile(`\bcopied_bytes=([0-9]+)`)
	ev := regexp.MustCompile(`; ([0-9]+) idle entries evicted`)
	for _, l := range strings.Split(string(data), "\n") {
		switch {
		case strings.Contains(l, "(copied now)"):
			copies++
			if m := cb.FindStringSubmatch(l); m != nil {
				n, _ := strconv.ParseInt(m[1], 10, 64)
				bytes += n
			}
		case strings.Contains(l, "(already cached)"):
			hits++
		case strings.Contains(l, "reclaim: still"):
			short++
		case strings.Contains(l, "idle entries evicted"):
			rounds++
			if m := ev.FindStringSubmatch(l); m != nil {
				n, _ := strconv.Atoi(m[1])
				evicted += n
			}
		}
	}
	return copies, hits, bytes, rounds, evicted, short
}

// report checks the invariants, prints the table and the closing line, and
// returns the exit code.
func report(all []*job, crashed []string, took time.Duration) int {
	var broken []string
	var started, failed, cancelled, retried int
	for _, j := range all {
		if j.attempts > 1 {
			retried++
		}
		switch {
		case j.cancel != "" || j.crashed:
			cancelled++
			if strings.TrimSpace(j.result) == "42" {
				started++
			}
		case j.state == "COMPLETED" && strings.TrimSpace(j.result) == "42":
			started++
		default:
			failed++
			broken = append(broken, fmt.Sprintf("job %s (%s, %s, kernel %s): %s, %q", j.id, j.user, j.opts, j.kernel, j.state, j.result))
		}
	}
	// No node drained or down.
	drained := 0
	nodes := must(sh("sinfo -h -N -o '%N %T'"))
	for _, l := range strings.Split(strings.TrimSpace(nodes), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[1] != "idle" {
			drained++
			broken = append(broken, "node "+l)
		}
	}
	// Nothing left behind on any node.
	left := 0
	for _, n := range []string{"m1", "m2"} {
		out, _ := onNode(n, fmt.Sprintf(`cd %s 2>/dev/null || exit 0
ls -A jobs 2>/dev/null | sed 's/^/job dir: /'
find users -mindepth 3 -path '*/refs/*' 2>/dev/null | sed 's/^/ref: /'
find users -name '.tmp-*' 2>/dev/null | sed 's/^/temp copy: /'
find users -mindepth 3 -path '*/jobs/*' 2>/dev/null | sed 's/^/user job dir: /'
pgrep -a -f 'sifkernel (internal|prolog|epilog|stage)' | sed 's/^/still running: /'
ls -A | grep -vx -e jobs -e users | sed 's/^/stray in the cache root: /'
true`, *nodeCache))
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l != "" {
				left++
				broken = append(broken, n+": "+l)
			}
		}
		for _, u := range users {
			out, err := onNode(n, fmt.Sprintf("runuser -u %s -- env HOME=/ %s/bin/sifkernel --config %s/etc/sifkernel/config.toml cache verify --json", u, *skc, *skc))
			if err != nil && !strings.Contains(out, `"bad": 0`) {
				broken = append(broken, fmt.Sprintf("%s: cache verify as %s: %v %s", n, u, err, lastLine(out)))
			}
			out, _ = onNode(n, fmt.Sprintf("runuser -u %s -- env HOME=/ %s/bin/sifkernel --config %s/etc/sifkernel/config.toml cache ls --json", u, *skc, *skc))
			var ls struct{ Usage struct{ Used, Quota int64 } }
			if json.Unmarshal([]byte(out), &ls) == nil && ls.Usage.Used > ls.Usage.Quota {
				broken = append(broken, fmt.Sprintf("%s: %s uses %d bytes, over the quota of %d", n, u, ls.Usage.Used, ls.Usage.Quota))
			}
		}
		// The entries stay for keep_warm; once each user's gc --all has
		// removed them (nothing is in use with every job gone), the disk must
		// be empty. Space in use means deleted images held open (an orphaned
		// squashfuse_ll).
		for _, u := range users {
			if out, err := onNode(n, fmt.Sprintf("runuser -u %s -- env HOME=/ %s/bin/sifkernel --config %s/etc/sifkernel/config.toml cache gc --all", u, *skc, *skc)); err != nil {
				broken = append(broken, fmt.Sprintf("%s: cache gc --all as %s: %v %s", n, u, err, lastLine(out)))
			}
		}
		df, _ := onNode(n, "df -B1M --output=used "+*nodeCache+" | tail -1")
		if used, _ := strconv.Atoi(strings.TrimSpace(df)); used > 1 {
			left++
			broken = append(broken, fmt.Sprintf("%s: %d MiB of its cache disk still in use with every job gone", n, used))
		}
	}
	times := hookTimes()
	var allTimes []float64
	fmt.Printf("\nsoak: %s, %d crashed with m1\n\n%-12s %6s %9s %9s %9s %9s\n", took.Round(time.Second), len(crashed), "hook", "runs", "p50", "p95", "p99", "max")
	for _, h := range []string{"prolog", "taskprolog", "epilog"} {
		xs := times[h]
		allTimes = append(allTimes, xs...)
		fmt.Printf("%-12s %6d %7.0f ms %6.0f ms %6.0f ms %6.0f ms\n", h, len(xs), pct(xs, 0.5), pct(xs, 0.95), pct(xs, 0.99), pct(xs, 1))
		if h != "taskprolog" && pct(xs, 1) > float64(hookBudget.Milliseconds()) {
			broken = append(broken, fmt.Sprintf("a %s ran %.0f ms, past its budget of %s", h, pct(xs, 1), *hookBudget))
		}
	}
	copies, hits, bytes, rounds, evicted, short := staging()
	hitRate := 0.0
	if copies+hits > 0 {
		hitRate = float64(hits) / float64(copies+hits)
	}
	fmt.Printf("\njobs %d, cancelled %d, crashed %d, kernels started %d (%d on a second try: a port race of jupyter_client), failed %d\nimages staged: %d copies (%d MiB), %d cache hits (hit rate %.0f%%)\nlow-water rounds: %d, %d idle entries evicted, %d short of the mark\n",
		len(all), cancelled-countCrashed(all), countCrashed(all), started, retried, failed, copies, bytes>>20, hits, hitRate*100, rounds, evicted, short)
	for _, b := range broken {
		fmt.Println("BROKEN: " + b)
	}
	fmt.Printf("soak: %d jobs, %d kernels started, %d failed, %d drained, %d left behind, hook p50/p99 %.0f/%.0f ms\n",
		len(all), started, failed, drained, left, pct(allTimes, 0.5), pct(allTimes, 0.99))
	if len(broken) > 0 {
		return 1
	}
	return 0
}

func countCrashed(all []*job) int {
	n := 0
	for _, j := range all {
		if j.crashed && j.cancel == "" {
			n++
		}
	}
	return n
}
