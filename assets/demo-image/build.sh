#!/usr/bin/env bash
# Builds the thindesk demo desktop: a small bootable qcow2 made only from Debian's
# packages, without mounting anything (so no root, loop devices or FUSE are needed).
#
#   assets/demo-image/build.sh OUTPUT.qcow2 [INIT]
#
# INIT is the guest's PID 1, `init` beside this script unless given (the network
# probe of the tests, ../probe-image/init, is built this way).
#
# Needs these Debian packages on the build machine:
#
#   apt-get install busybox-static syslinux syslinux-common mtools dosfstools qemu-utils
#
# plus apt-get and dpkg-deb (always present on Debian) and a working apt source that
# carries linux-image-cloud-amd64 (the kernel is downloaded with `apt-get download`
# and unpacked with dpkg-deb, never installed).
#
# The disk is an unpartitioned FAT file system whose boot sector is SYSLINUX's,
# holding Debian's cloud kernel and an initramfs of busybox-static and the `init`
# beside this script. Boot it with -drive file=...,if=virtio (or ide); SeaBIOS boots
# it like a "superfloppy". The guest shows a banner naming itself a thindesk demo
# desktop and its VM's name, and says on screen and on the serial port whether it
# can reach the management server. The host passes both through SMBIOS:
#
#   -smbios type=1,serial=VM_NAME,version=SERVER_PORT
#
# (read in the guest from /sys/class/dmi/id/product_serial and product_version).
# It powers off on the ACPI power button (QMP system_powerdown).
#
# It runs the QEMU guest agent (Debian's qemu-guest-agent with the libraries it
# needs, downloaded and unpacked like the kernel) on the virtio-serial port named
# org.qemu.guest_agent.0, so thindesk sets the account `student`'s password inside
# the guest (guest-set-user-password). The account is locked until it does.
#
# Running it again rebuilds OUTPUT from scratch; OUTPUT is replaced atomically.
set -euo pipefail

die() { echo "build.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || [ $# -eq 2 ] || die "usage: build.sh OUTPUT.qcow2 [INIT]"
out=$1
here=$(cd "$(dirname "$0")" && pwd)
init=${2:-$here/init}
[ -f "$init" ] || die "$init is missing"
init=$(cd "$(dirname "$init")" && pwd)/$(basename "$init")

for tool in apt-get dpkg-deb syslinux mcopy mkfs.fat qemu-img gzip; do
    command -v "$tool" >/dev/null ||
        die "$tool is missing; apt-get install busybox-static syslinux syslinux-common mtools dosfstools qemu-utils"
done
# Debian's dynamically linked `busybox` package lacks acpid and needs libc in the
# initramfs; busybox-static (which replaces it) provides a static /bin/busybox.
busybox=/bin/busybox
# grep reads all its input (no -q) in these pipelines: with pipefail, a writer cut
# short by grep exiting at the first match would fail the pipeline now and then.
dpkg-query -W -f '${Status}' busybox-static 2>/dev/null | grep 'install ok installed' >/dev/null ||
    die "busybox-static is not installed; apt-get install busybox-static"
for applet in acpid insmod nc ip cpio poweroff; do
    "$busybox" --list | grep -x "$applet" >/dev/null || die "$busybox lacks the $applet applet"
done

out_dir=$(dirname "$out")
mkdir -p "$out_dir" || die "cannot create $out_dir"
out=$(cd "$out_dir" && pwd)/$(basename "$out")

work=$(mktemp -d)
trap 'rm -rf "$work" "$out.partial"' EXIT
cd "$work"

# The cloud kernel is small and has the VGA text console, DMI/SMBIOS sysfs and the
# 8250 serial console built in; virtio and the ACPI button are modules. The meta
# package names the real kernel package in its Depends.
download() {
    apt-get download "$1" >apt.log 2>&1 || {
        cat apt.log >&2
        die "apt-get download $1 failed (is an apt source configured? try apt-get update)"
    }
}
download linux-image-cloud-amd64
kernel_pkg=$(dpkg-deb -f linux-image-cloud-amd64_*.deb Depends | grep -o -m1 'linux-image-[0-9][^ ,]*-cloud-amd64')
[ -n "$kernel_pkg" ] || die "cannot find the kernel package in linux-image-cloud-amd64's Depends"
download "$kernel_pkg"
dpkg-deb -x "$kernel_pkg"_*.deb kernel

# The guest agent and the shared libraries it loads (qemu-guest-agent's Depends and
# theirs), resolved by ldd against the unpacked packages only.
agent_packages="qemu-guest-agent libc6 libglib2.0-0 libnuma1 libudev1 liburing2 libpcre2-8-0"
for package in $agent_packages; do
    download "$package"
    dpkg-deb -x "$package"_*.deb agent
done
agent_libs=agent/lib/x86_64-linux-gnu:agent/usr/lib/x86_64-linux-gnu
agent_needs=$(LD_LIBRARY_PATH=$agent_libs ldd agent/usr/sbin/qemu-ga) || die "ldd qemu-ga failed"
if echo "$agent_needs" | grep 'not found' >/dev/null; then
    die "qemu-ga needs libraries that are not in $agent_packages: $agent_needs"
fi
vmlinuz=$(ls kernel/boot/vmlinuz-*)
modules=$(ls -d kernel/lib/modules/*/kernel)

# initramfs: busybox, the init script, the guest agent, and the modules for virtio
# networking, the virtio-serial ports and the ACPI power button (button + evdev, which busybox acpid reads), each after the
# modules it depends on. There is no modules.dep in the package (depmod makes it on
# installation), so the dependencies come from each module's .modinfo "depends=".
mkdir -p root/bin root/lib/modules root/etc/acpi/PWRF root/proc root/sys root/dev \
         root/tmp root/var/log root/var/run root/lib64 root/lib/x86_64-linux-gnu
cp "$busybox" root/bin/busybox
install -m 0755 "$init" root/init
install -m 0755 "$here/chpasswd" root/bin/chpasswd
install -m 0755 "$here/remote-access" root/bin/remote-access
cp agent/usr/sbin/qemu-ga root/bin/qemu-ga
cp -L agent/lib64/ld-linux-x86-64.so.2 root/lib64/
for library in $(echo "$agent_needs" | sed -n 's|.*=> \(agent/[^ ]*\) .*|\1|p'); do
    cp -L "$library" root/lib/x86_64-linux-gnu/
done
# One account, locked: only thindesk, through the guest agent, gives it a password.
printf 'root:x:0:0:root:/root:/bin/sh\nstudent:x:1000:1000:student:/tmp:/bin/sh\n' > root/etc/passwd
printf 'root:*:20000:0:99999:7:::\nstudent:!:20000:0:99999:7:::\n' > root/etc/shadow
printf 'root:x:0:\nstudent:x:1000:\n' > root/etc/group
chmod 0600 root/etc/shadow
module_path() {
    local found
    found=$(find "$modules" \( -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" \) -print -quit)
    [ -n "$found" ] || die "module $1 is not in $kernel_pkg"
    case $found in *.ko) ;; *) die "module $found is compressed; this script expects plain .ko" ;; esac
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
for module in virtio_pci virtio_net virtio_console button evdev; do add_module "$module"; done
n=0
for module in "${ordered[@]}"; do
    n=$((n + 1))
    cp "$(module_path "$module")" "root/lib/modules/$(printf %02d $n)-$module.ko"
done
printf '#!/bin/sh\necho "thindesk-demo: ACPI power button, powering off" > /dev/ttyS0\n/bin/busybox poweroff -f\n' \
    > root/etc/acpi/PWRF/00000080
chmod 0755 root/etc/acpi/PWRF/00000080
(cd root && find . | "$busybox" cpio -o -H newc 2>/dev/null | gzip -9) > initrd.gz

# console=tty0 last makes the VGA console /dev/console; the kernel also logs (only
# errors, loglevel=3) to the serial port.
cat > syslinux.cfg <<'CFG'
DEFAULT thindesk
PROMPT 0
TIMEOUT 0
LABEL thindesk
  KERNEL vmlinuz
  INITRD initrd.gz
  APPEND console=ttyS0 console=tty0 quiet loglevel=3 consoleblank=0 panic=5
CFG

size_kib=$(( ( $(stat -c %s "$vmlinuz") + $(stat -c %s initrd.gz) ) / 1024 + 2048 ))
mkfs.fat -C -n THINDESK disk.img "$size_kib" >/dev/null
mcopy -i disk.img "$vmlinuz" ::/vmlinuz
mcopy -i disk.img initrd.gz ::/initrd.gz
mcopy -i disk.img syslinux.cfg ::/syslinux.cfg
syslinux --install disk.img || die "syslinux --install failed"
qemu-img convert -f raw -O qcow2 disk.img "$out.partial"
mv -f "$out.partial" "$out"
echo "built $out ($(du -h "$out" | cut -f1)) with $kernel_pkg, modules: ${ordered[*]}"
