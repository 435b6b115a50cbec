#!/bin/sh
# The first thing to run: sifkernel on a built-in example, without root,
# Slurm or Apptainer. Everything happens in a temporary directory that is
# removed at the end; your own Jupyter kernels are not touched.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/bin"
work=$(mktemp -d "${TMPDIR:-/tmp}/sifkernel-try.XXXXXX")
trap 'rm -rf "$work"' EXIT
export JUPYTER_DATA_DIR="$work/jupyter"
export JUPYTER_PATH="" JUPYTER_RUNTIME_DIR="$work/jupyter/runtime"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

# This machine may have no Apptainer: put a labelled stand-in where a site
# module would install it, and a site config that searches there.
mkdir -p "$work/opt/apps/tacc-apptainer/1.4.1/bin"
cat >"$work/opt/apps/tacc-apptainer/1.4.1/bin/apptainer" <<'SH'
#!/bin/sh
# STAND-IN for the demo: answers --version only; it runs no containers.
echo "apptainer version 1.4.1 (sifkernel try stand-in)"
SH
chmod +x "$work/opt/apps/tacc-apptainer/1.4.1/bin/apptainer"
printf '[apptainer]\nsearch = ["%s/opt/apps/tacc-apptainer/*/bin/apptainer"]\n' "$work" >"$work/config.toml"
export SIFKERNEL_CONFIG="$work/config.toml"

step mkimage "$work/demo.sif"
"$bin/mkimage" "$work/demo.sif"

step sifkernel kernel add demo --image "$work/demo.sif"
"$bin/sifkernel" kernel add demo --image "$work/demo.sif"

step cat "$JUPYTER_DATA_DIR/kernels/demo/kernel.json"
cat "$JUPYTER_DATA_DIR/kernels/demo/kernel.json"

step sifkernel kernel check demo
"$bin/sifkernel" kernel check demo

# A hand-written kernel as many tutorials have it: stale Apptainer path,
# hard-coded --nv and curly quotes from a word processor.
mkdir -p "$JUPYTER_DATA_DIR/kernels/handmade"
# shellcheck disable=SC1111 # the curly quotes are the point
cat >"$JUPYTER_DATA_DIR/kernels/handmade/kernel.json" <<JSON
{
 “argv”: ["/opt/apps/tacc-apptainer/1.3.3/bin/apptainer", "exec", "--nv", "$work/demo.sif",
          "python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
 "display_name": "Hand-made", "language": "python"
}
JSON
step sifkernel kernel check handmade
"$bin/sifkernel" kernel check handmade || echo "(exit $?: errors found, as expected)"

step sifkernel kernel fix --dry-run handmade
"$bin/sifkernel" kernel fix --dry-run handmade

step sifkernel kernel fix handmade
"$bin/sifkernel" kernel fix handmade

step sifkernel kernel check
"$bin/sifkernel" kernel check

step sifkernel kernel list
"$bin/sifkernel" kernel list

step sifkernel config show
"$bin/sifkernel" config show
