#!/usr/bin/env bash
# Installs the Debian 12 packages thindesk runs and is tested with. Idempotent; run
# as root (CI does; a developer runs it once with sudo).
#
#   qemu-system-x86, qemu-utils   the virtual machines and their overlays
#   busybox-static, syslinux, syslinux-common, mtools, dosfstools
#                                 build the demo image (assets/demo-image/build.sh)
#   virt-viewer                   remote-viewer, the SPICE viewer
#   xvfb, imagemagick             a virtual screen and screenshots for GUI tests
#   python3                       the seed-only outside client (tests/seed_client.py)
#   chromium, chromium-driver     a headless browser for the management console's tests
#   pkg-config, libdbus-1-dev     build the client's keyring support (Secret Service)
#   fonts-wqy-microhei            a CJK font, so the client's Chinese text renders
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

needed=(qemu-system-x86_64 qemu-img busybox syslinux mcopy mkfs.fat remote-viewer Xvfb import python3 chromium chromedriver)
missing=()
for tool in "${needed[@]}"; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
pkg-config --exists dbus-1 2>/dev/null || missing+=(libdbus-1-dev)
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
if [ ${#missing[@]} -eq 0 ] && [ "${THINDESK_REINSTALL:-}" = "" ]; then
    exit 0   # everything is there: nothing to do, no root needed
fi
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then
        echo "installing ${missing[*]} with sudo" >&2
        exec sudo --preserve-env=THINDESK_REINSTALL bash "$0" "$@"
    fi
    echo "install-packages.sh: ${missing[*]} missing; run this script as root" >&2
    exit 1
fi

# Debian 12 images that ship qemu-utils from bookworm-backports need
# qemu-system-x86 of the same version, which only backports has.
. /etc/os-release
if [ "${VERSION_CODENAME:-}" = bookworm ] && ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/thindesk-backports.list
fi
apt-get update -qq
qemu_release=()
if [ "${VERSION_CODENAME:-}" = bookworm ]; then
    qemu_release=(-t bookworm-backports)
fi
apt-get install -y -qq "${qemu_release[@]}" qemu-system-x86 qemu-utils >/dev/null
apt-get install -y -qq busybox-static syslinux syslinux-common mtools dosfstools \
    virt-viewer xvfb imagemagick python3 chromium chromium-driver \
    pkg-config libdbus-1-dev fonts-wqy-microhei >/dev/null
echo "packages installed: $(qemu-system-x86_64 --version | head -n1)"
