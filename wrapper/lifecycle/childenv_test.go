package lifecycle

import (
	"slices"
	"sort"
	"testing"

	"github.com/sifkernel/sifkernel/wrapper/node"
)

// Every variable GPU detection reads reaches the Prolog's child. The child
// runs in a scrubbed environment, so a signal missing from childEnvKeys is
// lost by the real root Prolog alone, while the TaskProlog, activate and
// every test that runs detection in-process still pass.
func TestChildEnvCarriesEveryGPUSignal(t *testing.T) {
	read := map[string]bool{}
	node.DetectGPU(node.Env{Root: t.TempDir(), LookupEnv: func(k string) (string, bool) {
		read[k] = true
		return "", false
	}})
	var got []string
	for k := range read {
		got = append(got, k)
	}
	sort.Strings(got)
	want := node.GPUSignals()
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("DetectGPU reads %v; node.GPUSignals says %v", got, want)
	}
	keys := childEnvKeys()
	for _, k := range got {
		if !slices.Contains(keys, k) {
			t.Errorf("DetectGPU reads %s, which the Prolog does not pass to its child (%v)", k, keys)
		}
	}
}
