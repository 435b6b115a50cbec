package hostile

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/sifimage"
)

// Round five: what the site cache shares. Only the site's own images may
// be shared (owned by root or cache.site_owners all the way down, none
// writable by users): a file a user wrote, world-readable or not, lets its
// writer choose what others run, and a file "others" may read is not one
// every user may read (a group can be denied what others may).
func init() { attacks = append(attacks, publishAttacks...) }

// victimKernel gives the victim a container kernel k on image; the returned
// function removes what it made (before the suite checks the victim's
// files, which must be as they were).
func (n *node) victimKernel(t *testing.T, image string) func() {
	dir := filepath.Join(n.victim.home, ".local/share/jupyter/kernels/k")
	made := dir
	for _, p := range []string{".local", ".local/share", ".local/share/jupyter", ".local/share/jupyter/kernels"} {
		if _, err := os.Lstat(filepath.Join(n.victim.home, p)); err != nil {
			made = filepath.Join(n.victim.home, p)
			break
		}
	}
	testkit.Must(t, os.MkdirAll(dir, 0o755))
	testkit.Must(t, os.WriteFile(filepath.Join(dir, "kernel.json"), []byte(containerKernel("k", image)), 0o644))
	n.chownTree(made, n.victim)
	return func() { testkit.Must(t, os.RemoveAll(made)) }
}

// jobImage is the image the job's kernel k runs, from its kernel.json.
func (n *node) jobImage(t *testing.T, job, kernel string) string {
	data, err := os.ReadFile(filepath.Join(n.cache, "jobs", job, "jupyter/kernels", kernel, "kernel.json"))
	testkit.Must(t, err)
	for _, f := range strings.Split(string(data), `"`) {
		if strings.HasSuffix(f, ".sif") {
			return f
		}
	}
	t.Fatalf("job %s's kernel %s names no image:\n%s", job, kernel, data)
	return ""
}

var publishAttacks = []attack{
	{"a new mtime for every job: lock files pile up in the node cache without bound", func(t *testing.T, n *node) {
		img := filepath.Join(n.mallory.home, "files/img.sif")
		n.kernel("k", containerKernel("k", img))
		for i := range 5 {
			job := fmt.Sprint(510 + i)
			n.asMallory(fmt.Sprintf("touch -d '@%d' %s", 1700000000+i, img))
			n.expect0(n.hook("prolog_slurmd", job, n.mallory), hookLimit)
			n.expect0(n.hook("epilog_slurmd", job, n.mallory), hookLimit)
		}
		dir := filepath.Join(n.cache, "users", fmt.Sprint(n.mallory.uid))
		locks, _ := filepath.Glob(filepath.Join(dir, "*.lock"))
		entries, _ := filepath.Glob(filepath.Join(dir, "*.sif"))
		if len(locks) > len(entries) {
			t.Errorf("after 5 jobs, each with a new key: %d lock files for %d entries", len(locks), len(entries))
		}
	}},
	{"a doctored copy at a shared path, same size, mtime and SIF id: the victim's later copy there runs the attacker's bytes", func(t *testing.T, n *node) {
		n.siteOn()
		genuine := n.publicImage(t)
		shared := filepath.Join(n.tmp, "torch.sif") // /tmp, or a project directory both may write
		// Mallory's copy: one byte changed past the SIF header, then size,
		// mtime and SIF id as the genuine image's.
		n.asMallory(fmt.Sprintf("cp %s %s && printf X | dd of=%s bs=1 seek=$(( $(stat -c %%s %s) - 100 )) conv=notrunc 2>/dev/null && touch -r %s %s && chmod 0644 %s",
			genuine, shared, shared, shared, genuine, shared, shared))
		n.kernel("k", containerKernel("k", shared))
		n.expect0(n.hook("prolog_slurmd", "501", n.mallory), hookLimit)
		n.expect0(n.hook("epilog_slurmd", "501", n.mallory), hookLimit)
		n.asMallory("rm -f " + shared)
		// The victim puts the genuine image at the same path, as cp -p does.
		vcp := n.userCmd(n.victim, fmt.Sprintf("cp -p %s %s", genuine, shared))
		if out, err := vcp.CombinedOutput(); err != nil {
			t.Fatalf("the victim's copy: %v\n%s", err, out)
		}
		defer func() { _ = os.Remove(shared) }()
		defer n.victimKernel(t, shared)()
		n.expect0(n.hook("prolog_slurmd", "502", n.victim), hookLimit)
		used := n.jobImage(t, "502", "k")
		if got := testkit.ReadFile(t, used); !bytes.Equal(got, testkit.ReadFile(t, genuine)) {
			t.Errorf("the victim's kernel runs %s, whose bytes are not the victim's image (the attacker's copy)", used)
		}
		if e := siteEntries(n); len(e) != 0 {
			t.Errorf("the site cache shared a user's file: %v", e)
		}
		n.expect0(n.hook("epilog_slurmd", "502", n.victim), hookLimit)
	}},
	{"a root image others may read but the victim's group may not (0604): the site cache hands it to the group", func(t *testing.T, n *node) {
		n.siteOn()
		dir := filepath.Join(n.base, "apps", "restricted")
		testkit.Must(t, os.MkdirAll(dir, 0o755))
		img := filepath.Join(dir, "licensed.sif")
		testkit.Must(t, sifimage.Build(img, bytes.NewReader(sifimage.Minimal)))
		testkit.Must(t, os.Chown(img, 0, n.victim.gid))
		testkit.Must(t, os.Chmod(img, 0o604))
		n.kernel("k", containerKernel("k", img))
		n.expect0(n.hook("prolog_slurmd", "503", n.mallory), hookLimit)
		if e := siteEntries(n); len(e) != 0 {
			t.Errorf("the site cache copied, readable by all, an image the victim's group may not read: %v", e)
		}
	}},
	{"cache warm on a directory a user controls: root lists a private directory's names, and the user's names push the site's images out", func(t *testing.T, n *node) {
		n.siteOn()
		private := filepath.Join(n.base, "victim-private")
		testkit.Must(t, os.Mkdir(private, 0o700))
		testkit.Must(t, sifimage.Build(filepath.Join(private, "secret-project-name.sif"), bytes.NewReader(sifimage.Minimal)))
		n.chownTree(private, n.victim)
		dir := filepath.Join(n.tmp, "images")
		n.asMallory(fmt.Sprintf("mkdir -p %s && ln -s %s %s/private && for i in $(seq 1 300); do cp %s %s/a$i.sif; done",
			dir, private, dir, filepath.Join(n.mallory.home, "files/img.sif"), dir))
		for _, d := range []string{dir, filepath.Join(dir, "private")} {
			r := n.command("cache", "warm", d)
			if strings.Contains(r.out, "secret-project-name") || strings.Contains(n.logSince(0), "secret-project-name") {
				t.Errorf("cache warm %s named a file in the victim's private directory:\n%s", d, tail(r.out, 2000))
			}
			if !strings.Contains(r.out, "not taken") {
				t.Errorf("cache warm %s did not say it refused the directory:\n%s", d, tail(r.out, 2000))
			}
		}
		if e := siteEntries(n); len(e) != 0 {
			t.Errorf("cache warm staged a user's images for everyone: %v", e)
		}
		// The site's own directory is warmed as before.
		r := n.command("cache", "warm", filepath.Dir(n.publicImage(t)))
		if e := siteEntries(n); len(e) != 1 || r.code != 0 {
			t.Errorf("cache warm of the site's directory: exit %d, entries %v\n%s", r.code, e, tail(r.out, 2000))
		}
	}},
}
