#!/usr/bin/env bash
# Kernel start latency with the real Apptainer (issue 10), all measured in
# this one run: jupyter_client's KernelManager starting a kernel until it
# answers kernel_info, medians of ROUNDS (default 5), for
#   host      python3 -m ipykernel_launcher directly (no container);
#   tutorial  the hand-written kernel.json of the tutorial sifkernel replaces:
#             an absolute Apptainer path, --nv, --bind /run/user, the image read in place;
#   job       the job's kernel sifkernel writes (activate): the node's Apptainer,
#             the staged image, --nv only on GPU nodes.
# Goal: job <= 1.05 x tutorial (sifkernel adds no launcher hop). Root: it
# builds the test image (testcluster/image/build). Asserts nothing.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin="$top/bin/sifkernel"
rounds=${ROUNDS:-5}
apptainer=${APPTAINER:-/opt/apps/tacc-apptainer/1.5.3/bin/apptainer}
[ "$(id -u)" = 0 ] || { echo "kernelstart.sh needs root (it builds the test image)" >&2; exit 1; }
image=$("$top/testcluster/image/build" "$apptainer")
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/sifkernel-start.XXXXXX")
trap 'rm -rf "$work"' EXIT
export HOME="$work/home" TMPDIR="$work/tmp" JUPYTER_RUNTIME_DIR="$work/home/.local/share/jupyter/runtime"
export PYDEVD_DISABLE_FILE_VALIDATION=1 # else ipykernel's debugger warns on every start
mkdir -p "$HOME/scratch" "$TMPDIR" "$JUPYTER_RUNTIME_DIR" "$work/tutorial/kernels/tutorial"
cp "$image" "$HOME/scratch/bert.sif"
printf '[apptainer]\nsearch = ["%s"]\n[cache]\ndir = "%s/cache"\nreserve = "0B"\n' "$apptainer" "$work" >"$work/config.toml"
export SIFKERNEL_CONFIG="$work/config.toml"
cat >"$work/tutorial/kernels/tutorial/kernel.json" <<JSON
{"argv": ["$apptainer", "exec", "--nv", "--bind", "/run/user:/run/user", "$HOME/scratch/bert.sif",
  "python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
 "display_name": "tutorial", "language": "python"}
JSON
"$bin" kernel add job --image "$HOME/scratch/bert.sif" >/dev/null
eval "$("$bin" activate --job 400)"
export JUPYTER_PATH="$JUPYTER_PATH:$work/tutorial"

/usr/bin/python3 - "$rounds" <<'PY'
import statistics, sys, time, warnings, logging
warnings.simplefilter("ignore"); logging.disable(logging.CRITICAL)
from jupyter_client.manager import KernelManager
rounds = int(sys.argv[1])
def start(name):
    km = KernelManager(kernel_name=name)
    t0 = time.perf_counter()
    km.start_kernel()
    kc = km.client(); kc.start_channels(); kc.wait_for_ready(timeout=120)
    took = time.perf_counter() - t0
    argv = km.kernel_spec.argv
    kc.stop_channels(); km.shutdown_kernel(now=True)
    return took, argv
res = {}
for name in ("python3", "tutorial", "job"):
    start(name)  # warm the page cache and Apptainer's own caches
    times = []
    for _ in range(rounds):
        took, argv = start(name)
        times.append(took)
    res[name] = (statistics.median(times), argv)
print("kernel start (KernelManager.start_kernel until kernel_info answers), median of %d" % rounds)
print("job kernel argv: " + " ".join(res["job"][1]))
print()
print("%-40s %10s %10s %7s %s" % ("benchmark", "measured", "baseline", "ratio", "target"))
h, tu, jo = res["python3"][0], res["tutorial"][0], res["job"][0]
print("%-40s %8.0f ms %10s %7s %s" % ("host python (no container)", h * 1000, "-", "-", "-"))
print("%-40s %8.0f ms %8.0f ms %7.2f %s" % ("tutorial kernel vs host", tu * 1000, h * 1000, tu / h, "-"))
print("%-40s %8.0f ms %8.0f ms %7.2f %s" % ("sifkernel job kernel vs tutorial", jo * 1000, tu * 1000, jo / tu, "<= 1.05"))
PY
"$bin" run --job 400 -- true >/dev/null 2>&1 || true
