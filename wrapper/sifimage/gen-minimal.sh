#!/bin/sh
# Regenerates minimal.squashfs, the root filesystem of the example and test
# images: the empty mount points bubblewrap and Apptainer need, and a marker
# file that proves a command ran from inside the image. Needs mksquashfs.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/etc" "$tree/root" "$tree/home" "$tree/tmp" "$tree/usr" "$tree/proc" "$tree/dev" "$tree/sys" "$tree/run"
: >"$tree/etc/passwd"
: >"$tree/etc/group"
echo "sifkernel example image" >"$tree/sifkernel-marker"
mksquashfs "$tree" "$here/minimal.squashfs" -noappend -all-root -no-xattrs \
	-mkfs-time 0 -all-time 0 -comp gzip -quiet
