#!/usr/bin/env bash
# Installs the Debian 12 packages thindesk runs and is tested with. Idempotent; run
# as root (CI does; a developer runs it once with sudo).
#
#   qemu-system-x86, qemu-utils   the virtual machines and their overlays
#   busybox-static, syslinux, syslinux-common, mtools, dosfstools
#                                 build the demo image (assets/demo-image/build.sh)
#   virt-viewer                   remote-viewer, the SPICE viewer
#   freerdp2-x11                  xfreerdp, the RDP viewer
#   freerdp2-shadow-x11           freerdp-shadow-cli, a real RDP server for the client's
#                                 RDP certificate test
#   xvfb, imagemagick             a virtual screen and screenshots for GUI tests
#   python3                       the seed-only outside client (tests/seed_client.py)
#   chromium, chromium-driver     a headless browser for the management console's tests
#   pkg-config, libdbus-1-dev     build the client's keyring support (Secret Service)
#   fonts-wqy-microhei            a CJK font, so the client's Chinese text renders
#   nftables                      the table that keeps guests off this host (below)
#   tcpdump                       captures the SPICE port, to check that only TLS crosses it
#
# It also prepares the host once for the server:
#
#   - the system user `thindesk` (in the kvm group) that the server and its
#     machines run as, if there is none;
#   - the nftables table of guest-net.nft (beside this script), installed as
#     /etc/thindesk/guest-net.nft and loaded: it refuses `thindesk` every connection
#     to this host's own addresses, so that no guest (whose user-mode network is its
#     QEMU process's sockets) reaches the host. Tables do not survive a reboot: the
#     systemd unit loads the file again before every start of the server, and running
#     this script as root loads it too.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
here=$(cd "$(dirname "$0")" && pwd)

needed=(qemu-system-x86_64 qemu-img busybox syslinux mcopy mkfs.fat remote-viewer xfreerdp freerdp-shadow-cli Xvfb import python3 chromium chromedriver curl tcpdump)
missing=()
for tool in "${needed[@]}"; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
pkg-config --exists dbus-1 2>/dev/null || missing+=(libdbus-1-dev)
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
[ -x /usr/sbin/nft ] || missing+=(nftables)
packages_missing=${#missing[@]}
id thindesk >/dev/null 2>&1 || missing+=("the thindesk user")
cmp -s "$here/guest-net.nft" /etc/thindesk/guest-net.nft 2>/dev/null || missing+=(/etc/thindesk/guest-net.nft)
if [ ${#missing[@]} -eq 0 ] && [ "${THINDESK_REINSTALL:-}" = "" ] && [ "$(id -u)" != 0 ]; then
    # Everything is there: nothing to do, no root needed. (Whether the table is
    # loaded only root can see; as root this script loads it again.)
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then
        echo "installing ${missing[*]} with sudo" >&2
        exec sudo --preserve-env=THINDESK_REINSTALL bash "$0" "$@"
    fi
    echo "install-packages.sh: ${missing[*]} missing; run this script as root" >&2
    exit 1
fi

install_packages() {
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
        virt-viewer freerdp2-x11 freerdp2-shadow-x11 xvfb imagemagick python3 chromium chromium-driver \
        pkg-config libdbus-1-dev fonts-wqy-microhei nftables curl tcpdump >/dev/null
    echo "packages installed: $(qemu-system-x86_64 --version | head -n1)"
}
if [ "$packages_missing" -gt 0 ] || [ "${THINDESK_REINSTALL:-}" != "" ]; then
    install_packages
fi

if ! id thindesk >/dev/null 2>&1; then
    groups=()
    getent group kvm >/dev/null && groups=(--groups kvm)
    useradd --system --home-dir /var/lib/thindesk --shell /usr/sbin/nologin "${groups[@]}" thindesk
    echo "made the system user thindesk"
fi
install -D -m 0644 "$here/guest-net.nft" /etc/thindesk/guest-net.nft
nft -f /etc/thindesk/guest-net.nft
echo "guests are kept off this host: nftables table inet thindesk loaded from /etc/thindesk/guest-net.nft"
