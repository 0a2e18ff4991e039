#!/usr/bin/env bash
# The whole non-slow suite on Debian 13 trixie's own Python 3.13, in a trixie chroot on this
# machine (native speed; the VM check proves the booted system, this proves the interpreter).
#
#   bash tests/system/py313.sh          # ~10 min from nothing; the base root is cached
#   bash tests/system/py313.sh tests/test_journal.py -x     # pytest arguments instead of the suite
set -eu

# One compound command: bash reads it whole, so editing this file mid-run cannot derail it.
{
SRC=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${PTTD_CACHE:-$HOME/.cache/pttd}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pttd-py313-XXXXXX")
ROOTFS="$WORK/root"
APT="python3 python3-venv python3-dev gcc pkg-config libasound2-dev libsystemd-dev alsa-utils
  libasound2-plugins pulseaudio pulseaudio-utils espeak-ng sox shellcheck systemd git procps"
BASE="$CACHE/trixie-amd64-suite-$(echo "$APT" | sha256sum | cut -c1-12).tar"
start=$(date +%s)

step() { printf '[%4ss] %s\n' "$(( $(date +%s) - start ))" "$*"; }
die() { printf 'py313: %s\n' "$*" >&2; exit 1; }
trap 'rm -rf "$WORK"' EXIT

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mount namespaces)"
mkdir -p "$CACHE" "$ROOTFS"
if [ -f "$BASE" ]; then
  step "unpacking the cached trixie root"
  tar -C "$ROOTFS" -xf "$BASE"
else
  mirror=$(bash "$SRC/tests/tools/debian-mirror.sh")
  step "debootstrap trixie with the suite's Debian packages"
  # shellcheck disable=SC2086
  debootstrap --variant=minbase --include="ca-certificates,$(echo $APT | tr ' ' ,)" trixie \
    "$ROOTFS" "$mirror" > "$WORK/debootstrap.log" 2>&1 ||
    { tail -n 20 "$WORK/debootstrap.log"; die "debootstrap failed"; }
  tar -C "$ROOTFS" -cf "$BASE" .
fi

mkdir -p "$ROOTFS/src"
(cd "$SRC" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) |
  tar -C "$ROOTFS/src" -xf -
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/host-ca.crt"
for conf in /etc/pip.conf /etc/xdg/pip/pip.conf /etc/xdg/pip/constraints.txt; do
  if [ -f "$conf" ]; then mkdir -p "$ROOTFS$(dirname "$conf")"; cp "$conf" "$ROOTFS$conf"; fi
done

[ $# -gt 0 ] || set -- -m "not slow"
step "venv on $(chroot "$ROOTFS" python3 --version), pip install -e .[test], pytest $*"
# shellcheck disable=SC2016  # expanded by the inner shell, on purpose
unshare -m --propagation private bash -c '
  set -eu
  r=$1
  shift
  mount --bind "$r" "$r"   # a mount point, so the tests can unshare -m --propagation private
  mount -t proc proc "$r/proc"
  mount --rbind /dev "$r/dev"
  mount -t tmpfs tmpfs "$r/run"
  mount -t tmpfs tmpfs "$r/tmp"
  mount --rbind /sys "$r/sys"   # with /sys/fs/cgroup: journald 257 exits without it
  exec chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    PIP_CERT=/host-ca.crt SSL_CERT_FILE=/host-ca.crt bash -c "
      set -eu
      cd /src && git init -q . && git add -A
      python3 -m venv .venv
      .venv/bin/pip install --quiet --disable-pip-version-check -e \".[test]\"
      .venv/bin/python -m pytest -q -p no:cacheprovider -rf \"\$@\"" _ "$@"
' _ "$ROOTFS" "$@" 2>&1 | tee "$CACHE/py313-suite.log" | tail -n 25
if ! grep -q -E '^[0-9]+ passed' "$CACHE/py313-suite.log" ||
   grep -q -E '[0-9]+ (failed|errors?)\b' "$CACHE/py313-suite.log"; then
  die "the suite did not pass on trixie's Python"
fi
step "done"
exit
}
