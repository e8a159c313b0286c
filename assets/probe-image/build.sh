#!/usr/bin/env bash
# Builds the network probe for clouds: the demo desktop's recipe with ./init as PID 1
# (../demo-image/build.sh OUTPUT.qcow2 init), plus the kernel modules that reading
# an OpenStack config drive needs (an ISO 9660 CD-ROM on the IDE bus of Nova's
# default `pc` machine; this cloud kernel has no AHCI for q35's SATA), appended to the
# initramfs as a second cpio archive.
#
#   assets/probe-image/build.sh OUTPUT.qcow2
#
# The modules live here rather than in the demo recipe so that the demo image, which
# other tests share on the same cloud, does not change (and is not uploaded again)
# when the probe does. Needs what ../demo-image/build.sh needs.
set -euo pipefail

die() { echo "probe-image/build.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: build.sh OUTPUT.qcow2"
here=$(cd "$(dirname "$0")" && pwd)
out_dir=$(dirname "$1")
mkdir -p "$out_dir" || die "cannot create $out_dir"
out=$(cd "$out_dir" && pwd)/$(basename "$1")

work=$(mktemp -d)
trap 'rm -rf "$work" "$out.partial"' EXIT
bash "$here/../demo-image/build.sh" "$work/base.qcow2" "$here/init"
cd "$work"

# The same kernel package as the one build.sh just put in the image.
apt-get download linux-image-cloud-amd64 >apt.log 2>&1 || { cat apt.log >&2; die "apt-get download failed"; }
kernel_pkg=$(dpkg-deb -f linux-image-cloud-amd64_*.deb Depends | grep -o -m1 'linux-image-[0-9][^ ,]*-cloud-amd64')
[ -n "$kernel_pkg" ] || die "cannot find the kernel package in linux-image-cloud-amd64's Depends"
apt-get download "$kernel_pkg" >apt.log 2>&1 || { cat apt.log >&2; die "apt-get download $kernel_pkg failed"; }
dpkg-deb -x "$kernel_pkg"_*.deb kernel
modules=$(ls -d kernel/lib/modules/*/kernel)

module_path() {
    local found
    found=$(find "$modules" -name "$1.ko" -print -quit)
    [ -n "$found" ] || die "module $1 is not in $kernel_pkg (or is compressed)"
    echo "$found"
}
ordered=()
add_module() {
    local name=$1 dep path seen
    for seen in "${ordered[@]}"; do [ "$seen" = "$name" ] && return 0; done
    path=$(module_path "$name")
    for dep in $(tr '\0' '\n' <"$path" | sed -n 's/^depends=//p' | tr ',' ' '); do
        add_module "$dep"
    done
    ordered+=("$name")
}
for module in ata_piix sr_mod isofs; do add_module "$module"; done
# init loads /lib/modules/*.ko in name order: these after the demo's 01-NN.
mkdir -p extra/lib/modules
n=0
for module in "${ordered[@]}"; do
    n=$((n + 1))
    cp "$(module_path "$module")" "extra/lib/modules/$(printf '70-%02d' $n)-$module.ko"
done

qemu-img convert -f qcow2 -O raw base.qcow2 disk.img
mcopy -i disk.img ::/initrd.gz initrd.gz
# The kernel unpacks concatenated compressed cpio archives one after the other.
(cd extra && find . | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -9) >>initrd.gz
mcopy -o -i disk.img initrd.gz ::/initrd.gz
qemu-img convert -f raw -O qcow2 disk.img "$out.partial"
mv -f "$out.partial" "$out"
echo "built $out with the config drive's modules: ${ordered[*]}"
