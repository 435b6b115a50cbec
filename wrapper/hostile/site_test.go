package hostile

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/sifimage"
)

// Round three: the site cache (one copy per node of a public image, staged
// as nobody here, where the package's sifkernel user does not exist). A
// user must not be able to write, replace, poison or delete a site entry,
// nor make one from a file only they (or the victim) can read.
func init() { attacks = append(attacks, siteAttacks...) }

// publicImage is a site image: 0644, in directories every user may enter.
func (n *node) publicImage(t *testing.T) string {
	p := filepath.Join(n.base, "apps", "containers", "torch.sif")
	testkit.Must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	if _, err := os.Stat(p); err != nil {
		testkit.Must(t, sifimage.Build(p, bytes.NewReader(sifimage.Minimal)))
		testkit.Must(t, os.Chmod(p, 0o644))
	}
	return p
}

// siteOn turns the site cache on for an attack (staged as nobody here).
func (n *node) siteOn() {
	n.configText = strings.Replace(n.configText, "site = false\n", "site = true\nsite_user = \"nobody\"\n", 1)
	n.setConfig("")
	n.before = n.snapshot() // the config is the test's change, not an attack's
}

func siteEntries(n *node) []string {
	m, _ := filepath.Glob(filepath.Join(n.cache, "site", "*.sif"))
	return m
}

var siteAttacks = []attack{
	{"a link in a public directory to the victim's private image: the site cache copies what only the victim may read, for everyone", func(t *testing.T, n *node) {
		n.siteOn()
		// The victim's image, in a directory of the victim's only they may read.
		dir := filepath.Join(n.base, "victim-data")
		testkit.Must(t, os.Mkdir(dir, 0o755))
		private := filepath.Join(dir, "private.sif")
		testkit.Must(t, sifimage.Build(private, bytes.NewReader(sifimage.Minimal)))
		testkit.Must(t, os.Chown(private, n.victim.uid, n.victim.gid))
		testkit.Must(t, os.Chmod(private, 0o600))
		link := filepath.Join(n.base, "tmp", "looks-public.sif")
		n.asMallory("ln -sf " + private + " " + link)
		n.kernel("k", containerKernel("k", link))
		n.expect0(n.hook("prolog_slurmd", "301", n.mallory), hookLimit)
		if e := siteEntries(n); len(e) != 0 {
			t.Errorf("the site cache took the victim's private image: %v", e)
		}
	}},
	{"writing, replacing or deleting a site entry another user's job uses", func(t *testing.T, n *node) {
		n.siteOn()
		img := n.publicImage(t)
		n.kernel("k", containerKernel("k", img))
		n.expect0(n.hook("prolog_slurmd", "302", n.mallory), hookLimit)
		entries := siteEntries(n)
		if len(entries) != 1 {
			t.Fatalf("the public image is not in the site cache: %v\n%s", entries, tail(n.logSince(0), 3000))
		}
		e := entries[0]
		before, err := os.ReadFile(e)
		testkit.Must(t, err)
		for _, try := range []string{
			"echo poison > " + e,
			"rm -f " + e,
			"mv " + e + " " + e + ".x",
			"cp /etc/hostname " + filepath.Join(filepath.Dir(e), "planted.sif"),
			"ln -s /etc/shadow " + filepath.Join(filepath.Dir(e), "linked.sif"),
			"chmod 0666 " + e,
			"touch " + filepath.Join(n.cache, "site-refs", "x"),
		} {
			if out, err := n.malloryCmd(try).CombinedOutput(); err == nil {
				t.Errorf("mallory could: %s\n%s", try, out)
			}
		}
		after, err := os.ReadFile(e)
		if err != nil || !bytes.Equal(before, after) {
			t.Errorf("the site entry changed: %v", err)
		}
		st, err := os.Stat(e)
		testkit.Must(t, err)
		if st.Mode().Perm() != 0o444 || int(st.Sys().(*syscall.Stat_t).Uid) == n.mallory.uid {
			t.Errorf("site entry mode %v, uid %d", st.Mode().Perm(), st.Sys().(*syscall.Stat_t).Uid)
		}
	}},
	{"a site directory made or swapped by a user: the victim's job uses what mallory put there", func(t *testing.T, n *node) {
		n.siteOn()
		img := n.publicImage(t)
		// Mallory's own copy, in a directory of hers, shaped like a site cache.
		fake := filepath.Join(n.mallory.home, "files", "site")
		n.asMallory(fmt.Sprintf("mkdir -p %s && cp %s %s/", fake, img, fake))
		n.expect0(n.hook("prolog_slurmd", "303", n.victim), hookLimit) // makes the cache root and site/
		// The cache root and site/ are not hers: she cannot swap them.
		if out, err := n.malloryCmd(fmt.Sprintf("mv %s/site %s/old; ln -s %s %s/site", n.cache, n.cache, fake, n.cache)).CombinedOutput(); err == nil {
			t.Errorf("mallory swapped the site directory:\n%s", out)
		}
		// The victim's kernel goes before the check that nothing of theirs changed.
		defer n.victimKernel(t, img)()
		n.expect0(n.hook("prolog_slurmd", "304", n.victim), hookLimit)
		kj, err := os.ReadFile(filepath.Join(n.cache, "jobs", "304", "jupyter/kernels/k/kernel.json"))
		testkit.Must(t, err)
		if strings.Contains(string(kj), fake) || !strings.Contains(string(kj), filepath.Join(n.cache, "site")) {
			t.Errorf("the victim's kernel does not run the site cache's copy:\n%s", kj)
		}
		n.expect0(n.hook("epilog_slurmd", "304", n.victim), hookLimit)
		n.expect0(n.hook("epilog_slurmd", "303", n.victim), hookLimit)
	}},
}
