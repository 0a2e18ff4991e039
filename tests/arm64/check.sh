#!/usr/bin/env bash
# install.sh for real in a fresh Debian 13 trixie root (Python 3.13), on the Pi's architecture
# (arm64, under qemu-user emulation) by default, or natively with ARCH=amd64. Then, inside the
# root: pttd check, and the hot-path unit tests (protocol, ring, turn machine). install.sh runs
# twice; the second run must change nothing. pyalsaaudio and systemd-python have no wheels: they
# compile here, as on a Pi.
#
#   make arm64-check                 # ~6-10 min from scratch; the base root is cached
#   ARCH=amd64 bash tests/arm64/check.sh
#   SUITE=bookworm make arm64-check  # Debian 12, still supported
set -eu

ARCH=${ARCH:-arm64}
SUITE=${SUITE:-trixie}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${PTTD_CACHE:-$HOME/.cache/pttd}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pttd-$ARCH-XXXXXX")
ROOTFS="$WORK/root"
BASE="$CACHE/$SUITE-$ARCH-base.tar"
start=$(date +%s)

step() { printf '[%4ss] %s\n' "$(( $(date +%s) - start ))" "$*"; }
die() { printf 'arm64-check: %s\n' "$*" >&2; exit 1; }
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mount namespaces)"
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null


if [ "$ARCH" != "$(dpkg --print-architecture)" ]; then
  command -v qemu-aarch64-static >/dev/null ||
    { step "installing qemu-user-static"; apt-get install -y -qq qemu-user-static >/dev/null; }
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    grep -v '^#' /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register
  fi
fi

mkdir -p "$CACHE" "$ROOTFS"
if [ -f "$BASE" ]; then
  step "unpacking the cached $SUITE $ARCH root"
  tar -C "$ROOTFS" -xf "$BASE"
else
  step "debootstrap $SUITE $ARCH (about 90 s)"
  debootstrap --arch="$ARCH" --variant=minbase --include=ca-certificates,python3 \
    "$SUITE" "$ROOTFS" "$(bash "$SRC/tests/tools/debian-mirror.sh")" > "$WORK/debootstrap.log" 2>&1 ||
    { tail -n 20 "$WORK/debootstrap.log"; die "debootstrap failed"; }
  tar -C "$ROOTFS" -cf "$BASE" .
fi

mkdir -p "$ROOTFS/src"
(cd "$SRC" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -C "$ROOTFS/src" -xf -
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/host-ca.crt"
for conf in /etc/pip.conf /etc/xdg/pip/pip.conf; do
  [ -f "$conf" ] && mkdir -p "$ROOTFS$(dirname "$conf")" && cp "$conf" "$ROOTFS$conf"
done
[ -f /etc/xdg/pip/constraints.txt ] && cp /etc/xdg/pip/constraints.txt "$ROOTFS/etc/xdg/pip/"
printf 'AIzaSyARM64CHECKKEY\n' > "$ROOTFS/key.txt"

inside() {
  # shellcheck disable=SC2016  # expanded by the inner shell, on purpose
  unshare -m --propagation private bash -c '
    set -eu
    r=$1; shift
    mount -t proc proc "$r/proc"
    mount --rbind /dev "$r/dev"
    mount -t tmpfs tmpfs "$r/run"
    mount -t tmpfs tmpfs "$r/tmp"
    exec chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
      LANG=C.UTF-8 PIP_CERT=/host-ca.crt SSL_CERT_FILE=/host-ca.crt QEMU_CPU=cortex-a72 \
      GPIOZERO_PIN_FACTORY=mock GPIOZERO_MOCK_PIN_CLASS=mockpwmpin "$@"
  ' _ "$ROOTFS" "$@"
}

step "install.sh (first run: apt packages, user, venv with compiled pyalsaaudio/systemd-python)"
inside bash -c 'cd /src && ./install.sh --api-key-file /key.txt' > "$WORK/install1.log" 2>&1 ||
  { tail -n 30 "$WORK/install1.log"; die "install.sh failed"; }
grep -q "everything looks right\|pttd check:" "$WORK/install1.log" || die "pttd check did not run"
step "install.sh (second run: must change nothing)"
inside bash -c 'cd /src && ./install.sh --api-key-file /key.txt' > "$WORK/install2.log" 2>&1 ||
  { tail -n 30 "$WORK/install2.log"; die "second install.sh failed"; }
grep -q "nothing to change" "$WORK/install2.log" ||
  { tail -n 30 "$WORK/install2.log"; die "the second run changed something"; }
inside stat -c '%a %U' /etc/pttd/api_key | grep -qx '600 root' || die "api_key is not root 0600"
inside test -L /etc/systemd/system/multi-user.target.wants/pttd.service || die "unit not enabled"

step "pttd check inside the root ($(inside uname -m))"
inside /opt/pttd/venv/bin/pttd check --no-devices --config /etc/pttd/pttd.toml

step "hot-path unit tests inside the root"
inside /opt/pttd/venv/bin/pip install --quiet pytest hypothesis > "$WORK/pip.log" 2>&1 ||
  { tail -n 20 "$WORK/pip.log"; die "pip install pytest failed"; }
# shellcheck disable=SC2016  # expanded inside the root, on purpose
inside bash -c 'cd /src && /opt/pttd/venv/bin/python -m pytest -q -p no:cacheprovider \
  -o addopts="" --noconftest $(ls tests/test_live_protocol.py tests/test_ring.py tests/test_turns*.py \
  2>/dev/null)' | tail -n 3

step "done: install.sh, pttd check and the hot-path tests pass on $ARCH"
