// Package node gathers facts about the compute node a job runs on: whether
// the job has NVIDIA GPUs (and how that was decided), and host, memory and
// disk facts from gopsutil.
package node

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// Fact is one observation and where it came from.
type Fact struct {
	Source string `json:"source"` // e.g. "SLURM_JOB_GPUS", "/dev/nvidia*"
	Value  string `json:"value"`
}

// GPU is the decision "this job has NVIDIA GPUs" with its evidence.
type GPU struct {
	Present  bool     `json:"present"`
	Expected bool     `json:"expected"` // the partition is a GPU partition
	Devices  []string `json:"devices"`  // GPU indices or names visible to the job
	Facts    []Fact   `json:"facts"`
	Reason   string   `json:"reason"`
	Warning  string   `json:"warning,omitempty"`
}

// Env is what GPU detection reads: the job's environment and a root under
// which /dev and /proc are found (so tests can use fixtures).
type Env struct {
	LookupEnv func(string) (string, bool) // nil means os.LookupEnv; "set but empty" matters

	Root          string   // "" means "/"
	GPUPartitions []string // names or globs
}

// allocatedSignals are the variables in which Slurm names the GPUs it
// allocated, in the order DetectGPU trusts them.
var allocatedSignals = [...]string{"SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "GPU_DEVICE_ORDINAL"}

// GPUSignals lists every environment variable DetectGPU reads. A process
// that detects GPUs for a job in a scrubbed environment (the Prolog's child
// running as the job user) must be given each of them: this is the one list.
func GPUSignals() []string {
	return append(append([]string{"CUDA_VISIBLE_DEVICES"}, allocatedSignals[:]...), "SLURM_JOB_PARTITION")
}

var ordinal = regexp.MustCompile(`^[0-9]+$|^(GPU|MIG)-[0-9A-Za-z-]+$`)

// DetectGPU decides whether the job has NVIDIA GPUs. In order:
//
//  1. CUDA_VISIBLE_DEVICES set to "", "NoDevFiles" or "-1": Slurm (or the
//     user) hid every GPU, so there are none, whatever else says.
//  2. GPUs Slurm allocated (SLURM_JOB_GPUS, SLURM_STEP_GPUS,
//     GPU_DEVICE_ORDINAL) or CUDA_VISIBLE_DEVICES naming devices: present.
//  3. A GPU partition (node.gpu_partitions, e.g. rtx-dev): present, with a
//     warning when no device can be seen, since the kernel must still get
//     --nv there (a node without devices would fail anyway, more clearly).
//  4. Otherwise: NVIDIA devices on the node are not the job's unless Slurm
//     gave them, so no GPUs; the devices are recorded as a fact.
func DetectGPU(e Env) GPU {
	lookup := e.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	getenv := func(k string) string { v, _ := lookup(k); return v }
	g := GPU{Devices: []string{}, Facts: []Fact{}}
	record := func(src, v string) { g.Facts = append(g.Facts, Fact{Source: src, Value: v}) }
	cvd, cvdSet := lookup("CUDA_VISIBLE_DEVICES")
	var allocated []string
	for _, k := range allocatedSignals {
		if v, ok := lookup(k); ok && v != "" {
			record(k, v)
			if allocated == nil {
				allocated = devices(v)
			}
		}
	}
	if cvdSet {
		record("CUDA_VISIBLE_DEVICES", cvd)
	}
	part := getenv("SLURM_JOB_PARTITION")
	if part != "" {
		record("SLURM_JOB_PARTITION", part)
	}
	g.Expected = slurm.MatchPartition(e.GPUPartitions, part)
	dev := deviceFiles(e.Root)
	if len(dev) > 0 {
		record("/dev/nvidia[0-9]*", strings.Join(dev, ","))
	}
	if n := procGPUs(e.Root); n > 0 {
		record("/proc/driver/nvidia/gpus", fmt.Sprint(n))
	}
	switch {
	case cvdSet && hidden(cvd):
		g.Reason = fmt.Sprintf("CUDA_VISIBLE_DEVICES=%q hides every GPU", cvd)
	case len(allocated) > 0:
		g.Present, g.Devices, g.Reason = true, allocated, "Slurm allocated GPUs "+strings.Join(allocated, ",")
	case cvdSet && len(devices(cvd)) > 0:
		g.Present, g.Devices, g.Reason = true, devices(cvd), "CUDA_VISIBLE_DEVICES="+cvd
	case g.Expected:
		g.Present, g.Devices, g.Reason = true, dev, fmt.Sprintf("partition %s is a GPU partition", part)
		if len(dev) == 0 {
			g.Warning = fmt.Sprintf("partition %s should have GPUs but no /dev/nvidia* device is visible; adding --nv anyway", part)
		}
	default:
		g.Reason = "no GPUs allocated to the job"
		if part != "" {
			g.Reason += " and partition " + part + " is not a GPU partition"
		}
	}
	return g
}

func hidden(v string) bool {
	v = strings.TrimSpace(v)
	return v == "" || strings.EqualFold(v, "NoDevFiles") || v == "-1"
}

// devices splits "0,1", "gpu:0,1" or "GPU-uuid" lists into device names.
func devices(v string) []string {
	var out []string
	for _, d := range strings.Split(v, ",") {
		d = strings.TrimSpace(d)
		if i := strings.LastIndex(d, ":"); i >= 0 && !strings.HasPrefix(d, "MIG-") {
			d = d[i+1:]
		}
		if ordinal.MatchString(d) {
			out = append(out, d)
		}
	}
	return out
}

func deviceFiles(root string) []string {
	m, _ := filepath.Glob(filepath.Join(rootOr(root), "dev", "nvidia[0-9]*"))
	var out []string
	for _, p := range m {
		out = append(out, strings.TrimPrefix(filepath.Base(p), "nvidia"))
	}
	sort.Strings(out)
	return out
}

func procGPUs(root string) int {
	ents, _ := os.ReadDir(filepath.Join(rootOr(root), "proc", "driver", "nvidia", "gpus"))
	return len(ents)
}

func rootOr(r string) string {
	if r == "" {
		return "/"
	}
	return r
}
