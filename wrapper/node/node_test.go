package node

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

// fixture makes a root with n fake /dev/nvidiaN files and /proc GPU dirs.
func fixture(t *testing.T, n int) string {
	t.Helper()
	root := t.TempDir()
	testkit.Must(t, os.MkdirAll(filepath.Join(root, "dev"), 0o755))
	testkit.Must(t, os.MkdirAll(filepath.Join(root, "proc/driver/nvidia/gpus"), 0o755))
	testkit.Must(t, os.WriteFile(filepath.Join(root, "dev/nvidiactl"), nil, 0o644)) // not a GPU
	for i := range n {
		testkit.Must(t, os.WriteFile(filepath.Join(root, "dev", "nvidia"+string(rune('0'+i))), nil, 0o644))
		testkit.Must(t, os.MkdirAll(filepath.Join(root, "proc/driver/nvidia/gpus", "0000:0"+string(rune('0'+i))+":00.0"), 0o755))
	}
	return root
}

func TestDetectGPU(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		devs     int
		present  bool
		devices  []string
		warning  bool
		reasonIs string
	}{
		{name: "slurm allocated", env: map[string]string{"SLURM_JOB_GPUS": "0,1", "CUDA_VISIBLE_DEVICES": "0,1", "SLURM_JOB_PARTITION": "gpu-a100"}, devs: 2,
			present: true, devices: []string{"0", "1"}, reasonIs: "Slurm allocated"},
		{name: "srun step gpus", env: map[string]string{"SLURM_STEP_GPUS": "1"}, devs: 2, present: true, devices: []string{"1"}},
		{name: "rtx-dev with devices", env: map[string]string{"SLURM_JOB_PARTITION": "rtx-dev"}, devs: 4, present: true, devices: []string{"0", "1", "2", "3"}, reasonIs: "GPU partition"},
		{name: "rtx-dev without devices", env: map[string]string{"SLURM_JOB_PARTITION": "rtx-dev"}, present: true, devices: []string{}, warning: true},
		{name: "CVD empty", env: map[string]string{"CUDA_VISIBLE_DEVICES": "", "SLURM_JOB_PARTITION": "rtx"}, devs: 4, present: false, devices: []string{}, reasonIs: "hides every GPU"},
		{name: "NoDevFiles", env: map[string]string{"CUDA_VISIBLE_DEVICES": "NoDevFiles", "SLURM_JOB_GPUS": "0"}, devs: 1, present: false, devices: []string{}},
		{name: "CVD only", env: map[string]string{"CUDA_VISIBLE_DEVICES": "GPU-1a2b3c4d-0000"}, present: true, devices: []string{"GPU-1a2b3c4d-0000"}},
		{name: "cpu partition on a gpu node", env: map[string]string{"SLURM_JOB_PARTITION": "normal"}, devs: 2, present: false, devices: []string{}, reasonIs: "not a GPU partition"},
		{name: "nothing", env: map[string]string{}, present: false, devices: []string{}},
		{name: "gres form", env: map[string]string{"SLURM_JOB_GPUS": "gpu:2"}, present: true, devices: []string{"2"}},
		{name: "glob partition", env: map[string]string{"SLURM_JOB_PARTITION": "gpu-h100"}, devs: 1, present: true, devices: []string{"0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Env{
				LookupEnv:     func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok },
				Root:          fixture(t, tt.devs),
				GPUPartitions: []string{"rtx", "rtx-dev", "gpu-h*"},
			}
			g := DetectGPU(e)
			if g.Present != tt.present || !slices.Equal(g.Devices, tt.devices) || (g.Warning != "") != tt.warning {
				t.Errorf("DetectGPU = %+v, want present %v devices %v warning %v", g, tt.present, tt.devices, tt.warning)
			}
			if !strings.Contains(g.Reason, tt.reasonIs) {
				t.Errorf("reason %q does not say %q", g.Reason, tt.reasonIs)
			}
			for _, f := range g.Facts {
				if f.Source == "" {
					t.Errorf("a fact without a source: %+v", f)
				}
			}
		})
	}
}

func TestDetectHost(t *testing.T) {
	h := DetectHost(filepath.Join(t.TempDir(), "not", "yet"))
	if h.Hostname == "" || h.CPUs < 1 || h.MemTotal == 0 || h.CacheTotal == 0 {
		t.Errorf("DetectHost = %+v", h)
	}
}
