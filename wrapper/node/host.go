package node

import (
	"os"

	"github.com/shirou/gopsutil/v3/cpu"
	"github.com/shirou/gopsutil/v3/disk"
	"github.com/shirou/gopsutil/v3/host"
	"github.com/shirou/gopsutil/v3/mem"
)

// Host is what gopsutil says about the machine and the cache filesystem.
type Host struct {
	Hostname   string `json:"hostname"`
	OS         string `json:"os"`
	Kernel     string `json:"kernel"`
	CPUs       int    `json:"cpus"`
	CPUModel   string `json:"cpu_model,omitempty"`
	MemTotal   uint64 `json:"mem_total"`
	MemAvail   uint64 `json:"mem_available"`
	CacheDir   string `json:"cache_dir"`
	CacheFree  uint64 `json:"cache_free"`
	CacheTotal uint64 `json:"cache_total"`
	CacheFS    string `json:"cache_fstype,omitempty"`
}

// DetectHost gathers host facts; a fact that cannot be read is left empty.
// cacheDir is measured at its nearest existing ancestor.
func DetectHost(cacheDir string) Host {
	h := Host{CacheDir: cacheDir}
	h.Hostname, _ = os.Hostname()
	if info, err := host.Info(); err == nil {
		h.OS, h.Kernel = info.Platform+" "+info.PlatformVersion, info.KernelVersion
	}
	if n, err := cpu.Counts(true); err == nil {
		h.CPUs = n
	}
	if infos, err := cpu.Info(); err == nil && len(infos) > 0 {
		h.CPUModel = infos[0].ModelName
	}
	if vm, err := mem.VirtualMemory(); err == nil {
		h.MemTotal, h.MemAvail = vm.Total, vm.Available
	}
	for d := cacheDir; d != ""; {
		if u, err := disk.Usage(d); err == nil {
			h.CacheFree, h.CacheTotal, h.CacheFS = u.Free, u.Total, u.Fstype
			break
		}
		parent := parentDir(d)
		if parent == d {
			break
		}
		d = parent
	}
	return h
}

func parentDir(d string) string {
	for i := len(d) - 1; i > 0; i-- {
		if d[i] == '/' {
			return d[:i]
		}
	}
	return "/"
}
