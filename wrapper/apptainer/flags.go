package apptainer

// The flag tables follow `apptainer exec --help` (1.3): which flags take a
// value matters, since a value taken for the image would misparse the argv.

var globalValueFlags = set("--config", "--build-config")

var globalBoolFlags = set("--debug", "--quiet", "--silent", "--verbose", "--nocolor")

var valueFlags = set(
	"--add-caps", "--app", "--apply-cgroups", "--authfile", "--bind", "--blkio-weight",
	"--blkio-weight-device", "--cpu-shares", "--cpus", "--cpuset-cpus", "--cpuset-mems",
	"--cwd", "--dns", "--docker-host", "--drop-caps", "--env", "--env-file", "--fusemount",
	"--home", "--hostname", "--library", "--memory", "--memory-reservation", "--memory-swap",
	"--mount", "--network", "--network-args", "--no-mount", "--overlay", "--pem-path",
	"--pids-limit", "--pwd", "--scratch", "--security", "--workdir", "--cpu-period", "--cpu-quota",
)

var boolFlags = set(
	"--allow-setuid", "--boot", "--cleanenv", "--compat", "--contain", "--containall",
	"--disable-cache", "--docker-login", "--fakeroot", "--ipc", "--keep-privs", "--net",
	"--no-eval", "--no-home", "--no-https", "--no-init", "--no-privs", "--no-setgroups",
	"--no-umask", "--nohttps", "--nonet", "--nv", "--nvccli", "--oom-kill-disable", "--passphrase",
	"--pid", "--rocm", "--sif-fuse", "--unsquash", "--userns", "--uts", "--writable",
	"--writable-tmpfs", "--ignore-fakeroot-command", "--ignore-subuid", "--ignore-userns",
)

// shortFlags maps one-letter spellings to their long flags (global and verb).
var shortFlags = map[string]string{
	"-B": "--bind", "-H": "--home", "-o": "--overlay", "-S": "--scratch", "-W": "--workdir",
	"-e": "--cleanenv", "-c": "--contain", "-C": "--containall", "-w": "--writable",
	"-f": "--fakeroot", "-u": "--userns", "-i": "--ipc", "-p": "--pid", "-n": "--net",
	"-d": "--debug", "-q": "--quiet", "-s": "--silent", "-v": "--verbose",
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}
