//go:build cluster

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

// siteCache turns the site cache on for one test and off after it: the
// cluster's config has it off, as the other scenarios are of a user's own
// cache. Hooks read the config at every run: no daemon is told.
func siteCache(t *testing.T) {
	t.Helper()
	cfg := envOr("SITE_CONFIG", filepath.Join(skc, "etc/sifkernel/config.toml"))
	if vms {
		cfg = "/etc/sifkernel/config.toml"
	}
	set := func(v string) {
		sed := fmt.Sprintf("sed -i 's/^site = .*/site = %s/' %s && grep -q '^site = %s' %s", v, cfg, v, cfg)
		nodes := []string{""}
		if vms {
			nodes = []string{"m1", "m2"}
		}
		for _, n := range nodes {
			var out string
			var err error
			if n == "" {
				out, err = root("sh", "-c", sed)
			} else {
				out, err = onNode(t, n, "sh", "-c", sed)
			}
			if err != nil {
				t.Fatalf("site = %s in %s %s: %v\n%s", v, n, cfg, err, out)
			}
		}
	}
	set("true")
	t.Cleanup(func() { set("false") })
}

// Scenario 17: two users' jobs on one node use one public image (the
// cluster's python.sif, 0644 in directories everyone may enter): the first
// Prolog has the site user copy it into <cache>/site once, the second job
// copies nothing, both kernels run inside the image from that copy, and
// neither user's own cache holds one. Then, on the other node, `sifkernel
// cache warm` (root) stages it before any job, and the first job there
// copies nothing.
func TestSiteCacheTwoUsers(t *testing.T) {
	requireCluster(t)
	siteCache(t)
	public := filepath.Join(skc, "images/python.sif")
	for _, u := range []string{"sktest1", "sktest2"} {
		setupUser(t, u, "bert")
		// Only the shared kernel: bert's image is in the user's home.
		mustAs(t, u, fmt.Sprintf("rm -rf ~/go-site ~/.local/share/jupyter/kernels/bert && sifkernel kernel add shared --image %s --force", public))
	}
	site := nodeCache + "/site/"
	for _, n := range []string{"m1", "m2"} { // a clean slate: no copy from an earlier run
		_, _ = onNode(t, n, "sh", "-c", "rm -f "+site+"*.sif "+site+"*.json")
	}
	// Earlier scenarios' copies stay in the users' own caches (keep_warm):
	// what counts is that these jobs add none.
	own := map[string]int{}
	for _, u := range []string{"sktest1", "sktest2"} {
		own[u] = len(globOn(t, "m1", fmt.Sprintf("%s/users/%d/*.sif", nodeCache, uid(t, u))))
	}
	since := apptainerOffset(t)
	mustAs(t, "sktest1", "rm -f ~/site-started")
	a := sbatch(t, "sktest1", "-p normal -w m1", "touch ~/site-started; for i in $(seq 1500); do [ -e ~/go-site ] && break; sleep 0.2; done; /usr/bin/python3 ~/client.py shared")
	defer scancel(a)
	waitState(t, a, 2*time.Minute, "RUNNING")
	// The batch script starts when the whole Prolog has ended (its site
	// child included). node.json is no sign of that here: the first user
	// part writes it, before the site child copies.
	testkit.Eventually(t, scaled(2*time.Minute), 200*time.Millisecond, func() bool {
		_, err := as(t, "sktest1", "test -e ~/site-started")
		return err == nil
	}, func() string {
		return "job " + a + "'s batch script did not start\n" + lastBytes(sifkernelLog(t), 3000)
	})
	copies := globOn(t, "m1", site+"*.sif")
	if len(copies) != 1 {
		t.Fatalf("site copies on m1 after the first job's Prolog: %v\n%s", copies, lastBytes(sifkernelLog(t), 3000))
	}
	inode, _ := onNode(t, "m1", "stat", "-c", "%i %U %a", copies[0])
	if f := strings.Fields(inode); len(f) != 3 || f[2] != "444" || f[1] == "root" || strings.HasPrefix(f[1], "sktest") {
		t.Errorf("the site copy is %q: want 0444, the site user's", inode)
	}
	b := sbatch(t, "sktest2", "-p normal -w m1", "/usr/bin/python3 ~/client.py shared")
	defer scancel(b)
	if s := waitDone(t, b); s != "COMPLETED" {
		t.Fatalf("sktest2's job %s: %s\n%s", b, s, output(t, "sktest2", b))
	}
	mustAs(t, "sktest1", "touch ~/go-site")
	if s := waitDone(t, a); s != "COMPLETED" {
		t.Fatalf("sktest1's job %s: %s\n%s", a, s, output(t, "sktest1", a))
	}
	for _, j := range []struct{ u, id string }{{"sktest1", a}, {"sktest2", b}} {
		if r := parseResult(t, output(t, j.u, j.id)); strings.TrimSpace(r.Out) != marker {
			t.Errorf("%s's kernel printed %q", j.u, r.Out)
		}
		if n := len(globOn(t, "m1", fmt.Sprintf("%s/users/%d/*.sif", nodeCache, uid(t, j.u)))); n != own[j.u] {
			t.Errorf("%s's job made %d copies of its own", j.u, n-own[j.u])
		}
	}
	again, _ := onNode(t, "m1", "stat", "-c", "%i %U %a", copies[0])
	if again != inode {
		t.Errorf("the site copy changed between the jobs: %q, then %q", inode, again)
	}
	calls := apptainerCalls(t, since)
	users := map[int]bool{}
	for _, c := range calls {
		if c.Image() != copies[0] {
			t.Errorf("Apptainer ran %s, not the site copy %s", c.Image(), copies[0])
		}
		users[c.UID] = true
	}
	if len(users) != 2 {
		t.Errorf("Apptainer calls %+v: want both users', from the site copy", calls)
	}

	// Before any job on m2: root warms its site cache.
	if out, err := onNode(t, "m2", sifkernelBin, "cache", "warm", public); err != nil || !strings.Contains(out, "staged as") {
		t.Fatalf("cache warm on m2: %v\n%s", err, out)
	}
	warmed := globOn(t, "m2", site+"*.sif")
	before, _ := onNode(t, "m2", "stat", "-c", "%i", warmed[0])
	_, _, r := kernelJob(t, "sktest2", "-p normal -w m2", "/usr/bin/python3 ~/client.py shared")
	if strings.TrimSpace(r.Out) != marker {
		t.Errorf("the first job after the warm-up printed %q", r.Out)
	}
	if after, _ := onNode(t, "m2", "stat", "-c", "%i", warmed[0]); after != before || len(globOn(t, "m2", site+"*.sif")) != 1 {
		t.Errorf("the first job after the warm-up copied the image again")
	}
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
