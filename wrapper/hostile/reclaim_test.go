package hostile

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/sifimage"
)

// Round six: giving space back. Idle entries stay for keep_warm (hours),
// and when the disk runs short root asks each owner's child for its idle
// entries and takes the least recently used across all of them (see
// lifecycle/reclaim.go). What a user's child reports comes from files the
// user may write herself.
func init() { attacks = append(attacks, reclaimAttacks...) }

// shortDisk makes every later hook find the cache's file system short of
// cache.low_water (a mark of 100% is never met).
func (n *node) shortDisk() {
	n.configText = strings.Replace(n.configText, "low_water = \"0B\"\n", "low_water = \"100%\"\n", 1)
	n.setConfig("")
}

var reclaimAttacks = []attack{
	{"metadata of a huge, long-unused entry (a file of no bytes): root's low-water round asks only her, and everyone else's idle entries keep the disk full", func(t *testing.T, n *node) {
		// The victim's job leaves an idle entry of her own image.
		img := filepath.Join(n.base, "victim-img", "v.sif")
		testkit.Must(t, os.MkdirAll(filepath.Dir(img), 0o755))
		testkit.Must(t, sifimage.Build(img, bytes.NewReader(make([]byte, 256<<10))))
		n.chownTree(filepath.Dir(img), n.victim)
		removeKernel := n.victimKernel(t, img)
		n.expect0(n.hook("prolog_slurmd", "601", n.victim), hookLimit)
		n.expect0(n.hook("epilog_slurmd", "601", n.victim), hookLimit)
		removeKernel()
		victims, _ := filepath.Glob(filepath.Join(n.cache, "users", fmt.Sprint(n.victim.uid), "*.sif"))
		if len(victims) != 1 {
			t.Fatalf("the victim's job left %v, want one idle entry", victims)
		}
		// Mallory's cache directory (her first job makes it) gets an entry
		// of no bytes whose metadata says a terabyte, unused for 71 hours (the
		// oldest on the node, but within keep_warm: her own gc keeps it).
		n.expect0(n.hook("prolog_slurmd", "602", n.mallory), hookLimit)
		n.expect0(n.hook("epilog_slurmd", "602", n.mallory), hookLimit)
		dir := filepath.Join(n.cache, "users", fmt.Sprint(n.mallory.uid))
		key := "fake-0123456789abcdef"
		n.asMallory(fmt.Sprintf(`printf '{"key":"%s","source":"/x","size":1099511627776,"mtime":"1970-01-01T00:00:00Z","staged_at":"1970-01-01T00:00:00Z","uid":%d}' >%s/%s.json && : >%s/%s.sif && touch -d '71 hours ago' %s/%s.json`,
			key, n.mallory.uid, dir, key, dir, key, dir, key))
		n.shortDisk()
		n.before = n.snapshot()
		n.expect0(n.hook("epilog_slurmd", "603", n.mallory), hookLimit)
		if _, err := os.Stat(victims[0]); err == nil {
			t.Errorf("the victim's idle entry survived a round that needed its room: mallory's metadata answered for it\n%s", tail(n.logSince(0), 3000))
		}
	}},
	{"SIGSTOP on her own low-water child: the Epilog outlives its deadline", func(t *testing.T, n *node) {
		n.expect0(n.hook("prolog_slurmd", "611", n.mallory), hookLimit)
		// Two thousand entries of no bytes keep her child listing long
		// enough for her stopper to catch it.
		dir := filepath.Join(n.cache, "users", fmt.Sprint(n.mallory.uid))
		n.asMallory(fmt.Sprintf(`cd %s && for i in $(seq 1000 2999); do k=f-000000000000$i; printf '{"key":"%%s","size":1}' $k >$k.json; : >$k.sif; done`, dir))
		n.shortDisk()
		n.setConfig(fmt.Sprintf("[prolog]\ntimeout = %q\n", prologTimeout))
		n.before = n.snapshot()
		done := n.stopperOf(t, "internal reclai[m]", "true")
		r := n.hook("epilog_slurmd", "611", n.mallory)
		done()
		n.expect0(r, prologTimeout+deadlineMargin)
		if r.dur < time.Second {
			t.Errorf("the Epilog took %s: her stopper never caught the child, and this attack tested nothing", r.dur)
		}
		n.logSays("reclaim: uid")
	}},
}
