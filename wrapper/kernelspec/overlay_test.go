package kernelspec

import (
	"slices"
	"strings"
	"testing"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/apptainer"
)

const taccKernel = `{
 "argv": ["/opt/apps/tacc-apptainer/1.3.3/bin/apptainer", "exec", "--nv", "--bind", "/run/user:/run/user",
          "--sparkle", "/scratch/u/bert.sif", "python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
 "display_name": "BERT", "language": "python", "x-portal": 1
}`

func TestOverlay(t *testing.T) {
	rt := &apptainer.Runtime{Path: "/opt/apps/tacc-apptainer/1.4.1/bin/apptainer", Rule: "search", Version: "1.4.1"}
	base := OverlayOptions{
		Runtime: rt, GPUFlag: "--nv", DefaultBinds: []string{"/run/user", "/work/shared"}, RuntimeDir: "/run/user/1001/jupyter",
		Home: "/home/u", NoUserSite: true, Job: "4242", Node: "c001", Version: "test",
		Exists: func(p string) bool { return p == "/run/user" },
	}
	tests := []struct {
		name string
		body string
		mod  func(*OverlayOptions)
	}{
		{name: "gpu node staged", body: taccKernel, mod: func(o *OverlayOptions) {
			o.GPU, o.GPUReason, o.Image = true, "Slurm allocated GPUs 0", "/tmp/sifkernel/users/1001/bert-0123456789abcdef.sif"
		}},
		{name: "cpu node not staged", body: taccKernel, mod: func(o *OverlayOptions) {
			o.GPUReason, o.NotStaged = "no GPUs allocated to the job", "no space in the node cache"
		}},
		{name: "no run user", body: taccKernel, mod: func(o *OverlayOptions) {
			o.Exists = func(string) bool { return false }
			o.RuntimeDir = "/home/u/.local/share/jupyter/runtime"
		}},
		{name: "gpu never, user site kept", body: `{"argv": ["apptainer", "exec", "--nv", "/i.sif", "python3", "-f", "{connection_file}"],
			"language": "python", "metadata": {"sifkernel": {"gpu": "never", "python_no_user_site": false}}}`, mod: func(o *OverlayOptions) { o.GPU = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.mod(&o)
			s, err := Parse("/home/u/.local/share/jupyter/kernels/bert/kernel.json", []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			k := &Kernel{Name: "bert", Dir: "/home/u/.local/share/jupyter/kernels/bert", Spec: s}
			spec, changes, err := Overlay(k, o)
			if err != nil {
				t.Fatal(err)
			}
			out, _ := spec.Encode()
			testkit.Golden(t, append(out, []byte("# "+strings.Join(changes, "\n# ")+"\n")...))
			if !slices.Contains(spec.Argv, "--sparkle") && strings.Contains(tt.body, "--sparkle") {
				t.Error("the overlay dropped a flag the user wrote")
			}
			if !slices.Equal(k.Spec.Argv, s.Argv) {
				t.Error("Overlay changed the user's spec")
			}
		})
	}
}
