package hostile

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

// Round four: time. Slurm drains a node whose Prolog runs past
// PrologEpilogTimeout, so a job user who can stretch the Prolog can drain
// any node she lands on. Her own children (the user parts, run with her
// uid) are hers to signal: SIGSTOP does not stop root's clock, and root
// must not wait for them past the hook's one deadline.
func init() { attacks = append(attacks, timeAttacks...) }

// prologTimeout is prolog.timeout in these attacks, and deadlineMargin how
// far past it a Prolog may end (root's own last steps, the kill's reaping).
const (
	prologTimeout  = 8 * time.Second
	deadlineMargin = 2 * time.Second
)

// stopper starts, as mallory, a loop that SIGSTOPs each of her own
// processes whose command line matches the shell test pick (given $pid),
// for as long as the hook runs; it returns a function that ends it.
func (n *node) stopper(t *testing.T, pick string) func() {
	return n.stopperOf(t, "internal user-par[t]", pick)
}

// stopperOf is stopper for her children whose command line matches the
// pgrep pattern kind.
func (n *node) stopperOf(t *testing.T, kind, pick string) func() {
	stop := filepath.Join(n.mallory.home, "files", "stop-stopper")
	cmd := n.malloryCmd(fmt.Sprintf(`end=$(( $(date +%%s) + 120 ))
while [ ! -e %s ] && [ $(date +%%s) -lt $end ]; do
  for pid in $(pgrep -u %d -f '%s'); do
    if %s; then kill -STOP $pid 2>/dev/null; fi
  done
  sleep 0.01
done`, stop, n.mallory.uid, kind, pick))
	testkit.Must(t, cmd.Start())
	return func() { _ = os.WriteFile(stop, nil, 0o644); _ = cmd.Wait(); _ = os.Remove(stop) }
}

// timedProlog sets a prolog.timeout, gives mallory a kernel on her own
// image and one on a public image (so the Prolog runs both user parts and
// the site child between them), and runs her Prolog under a stopper, then
// each of then (the job's tasks), then the Epilog.
func (n *node) timedProlog(t *testing.T, job, pick string, then ...func()) {
	n.siteOn()
	n.setConfig(fmt.Sprintf("[prolog]\ntimeout = %q\n", prologTimeout))
	n.before = n.snapshot()
	// Many kernels on her own image keep her first user part running long
	// enough for the stopper to catch it.
	for i := range 40 {
		name := fmt.Sprintf("own%d", i)
		n.kernel(name, containerKernel(name, filepath.Join(n.mallory.home, "files/img.sif")))
	}
	n.kernel("site", containerKernel("site", n.publicImage(t)))
	done := n.stopper(t, pick)
	r := n.hook("prolog_slurmd", job, n.mallory)
	done()
	n.expect0(r, prologTimeout+deadlineMargin)
	for _, f := range then {
		f()
	}
	n.expect0(n.hook("epilog_slurmd", job, n.mallory), hookLimit)
}

var timeAttacks = []attack{
	{"SIGSTOP on her own first user part: the Prolog outlives its deadline and Slurm drains the node", func(t *testing.T, n *node) {
		n.timedProlog(t, "401", `grep -q site_stager /proc/$pid/cmdline`)
		n.logSays("deadline")
	}},
	{"SIGSTOP on her own second user part (after the site child): the Prolog outlives its deadline, or leaves the job unprepared and its TaskProlog copies the site's image into her quota", func(t *testing.T, n *node) {
		n.timedProlog(t, "402", `! grep -q site_stager /proc/$pid/cmdline`, func() {
			// The Prolog's kernels stand (the site image in place): the
			// TaskProlog takes them, and runs no user part of its own.
			r := n.hook("prolog_task", "402", n.mallory)
			n.expect0(r, hookLimit)
			if want := filepath.Join(n.cache, "jobs", "402", "jupyter"); !strings.Contains(r.out, "JUPYTER_PATH="+want) {
				t.Errorf("the TaskProlog did not export the Prolog's kernels (%s):\n%s", want, r.out)
			}
			own := filepath.Join(n.cache, "users", strconv.Itoa(n.mallory.uid))
			// (Here the site child, never stopped, stages the small public
			// image, so a user part of her own would find it in the site
			// cache; on the VM soak's slow link it copied it into her quota.)
			if _, err := os.Lstat(filepath.Join(own, "jobs", "402")); err == nil {
				t.Errorf("the TaskProlog ran a user part of its own in %s/jobs/402", own)
			}
		})
	}},
	{"SIGSTOP on every child of hers, in every phase: the Prolog outlives its deadline", func(t *testing.T, n *node) {
		n.timedProlog(t, "403", `true`)
		n.logSays("deadline")
	}},
}
