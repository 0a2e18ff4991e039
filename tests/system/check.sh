#!/usr/bin/env bash
# make system-check: boots Debian 13 trixie (qemu TCG) with its own kernel and systemd as
# PID 1, and runs tests/system/vm_steps.py in it: install.sh for real, the unit under a real
# systemd, snd-aloop ALSA faults, journald, the watchdog, a reboot, a reload.
#
#   make system-check                      # from nothing ~25 min on 2 shared cores; cached: less
#   PTTD_SYSTEM_CACHE=DIR make system-check
#   ARCH=arm64 make system-check           # the Pi's architecture (qemu-system-aarch64 -M virt)
set -eu

# One compound command: bash reads it whole, so editing this file mid-run cannot derail it.
{
SRC=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${PTTD_SYSTEM_CACHE:-$HOME/.cache/pttd-system-check}
RECIPE="$SRC/tests/system/image.sh"
ARCH=${ARCH:-amd64}
KEY=$(sha256sum "$RECIPE" | cut -c1-16)
IMAGE="$CACHE/trixie-$ARCH-$KEY"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pttd-system-XXXXXX")
SHARE="$WORK/share"
TIMEOUT_S=${PTTD_SYSTEM_TIMEOUT:-2400}
start=$(date +%s)
QEMU_PID=""

step() { printf '[%4ss] %s\n' "$(( $(date +%s) - start ))" "$*"; }
die() { printf 'system-check: %s\n' "$*" >&2; exit 1; }
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  if [ -n "$QEMU_PID" ]; then kill "$QEMU_PID" 2>/dev/null || true; fi
  # The last run's console and results stay for a look after the fact.
  mkdir -p "$CACHE/last-run"
  cp "$WORK/console.log" "$SHARE/results/steps.jsonl" "$CACHE/last-run/" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap and mkfs of the VM's root)"
missing=""
case "$ARCH" in
  amd64) QEMU=(qemu-system-x86_64 -machine q35 -cpu max); CONSOLE=ttyS0
         QEMU_PKG=qemu-system-x86 ;;
  arm64) QEMU=(qemu-system-aarch64 -machine virt -cpu cortex-a72); CONSOLE=ttyAMA0
         QEMU_PKG=qemu-system-arm ;;
  *) die "ARCH=$ARCH: amd64 or arm64" ;;
esac
for tool in "${QEMU[0]}:$QEMU_PKG" qemu-img:qemu-utils debootstrap:debootstrap \
            mkfs.ext4:e2fsprogs; do
  command -v "${tool%%:*}" > /dev/null || missing="$missing ${tool#*:}"
done
if [ -n "$missing" ]; then
  step "installing$missing"
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing > /dev/null
fi


if [ -f "$IMAGE/root.img" ]; then
  step "boot image: cached $IMAGE"
else
  if [ "$ARCH" != "$(dpkg --print-architecture)" ]; then
    # debootstrap's second stage runs the foreign root's programs through qemu-user.
    command -v qemu-aarch64-static > /dev/null ||
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static > /dev/null
    [ -e /proc/sys/fs/binfmt_misc/register ] ||
      mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] ||
      grep -v '^#' /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register
  fi
  step "boot image: debootstrap trixie $ARCH with linux-image-$ARCH (a few minutes)"
  mkdir -p "$IMAGE.tmp"
  bash "$RECIPE" "$IMAGE.tmp" "$(bash "$SRC/tests/tools/debian-mirror.sh")" "$ARCH"
  rm -rf "$IMAGE"
  mv "$IMAGE.tmp" "$IMAGE"
  # Images of older recipes are never used again.
  find "$CACHE" -maxdepth 1 -name "trixie-$ARCH-*" ! -name "${IMAGE##*/}" -exec rm -rf {} +
  step "boot image: built, $(du -sh "$IMAGE" | cut -f1) in $IMAGE"
fi

mkdir -p "$SHARE/src" "$SHARE/results"
(cd "$SRC" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -C "$SHARE/src" -xf -
# The disk is a copy-on-write layer over the cached image, so every run starts clean.
qemu-img create -q -f qcow2 -F raw -b "$IMAGE/root.img" "$WORK/disk.qcow2"

step "booting the VM (${QEMU[0]}, TCG, 2 vCPUs, 1 GiB)"
: > "$WORK/console.log"   # before qemu, so the tail below finds it
"${QEMU[@]}" -accel tcg -smp 2 -m 1024 -nographic \
  -kernel "$IMAGE/vmlinuz" -initrd "$IMAGE/initrd.img" \
  -append "root=/dev/vda rw console=$CONSOLE quiet systemd.show_status=false panic=-1" \
  -drive "file=$WORK/disk.qcow2,if=virtio,format=qcow2" \
  -netdev user,id=net0 -device virtio-net-pci,netdev=net0 \
  -virtfs "local,path=$SHARE,mount_tag=share,security_model=none,id=share" \
  < /dev/null > "$WORK/console.log" 2>&1 &
QEMU_PID=$!

# The guest prints "pttd-vm: ..." lines on its console; show those as they come.
tail -n +1 -f --pid="$QEMU_PID" "$WORK/console.log" | grep --line-buffered -o 'pttd-vm: .*' |
  sed -u 's/^pttd-vm: /    vm: /' &
deadline=$(( $(date +%s) + TIMEOUT_S ))
while kill -0 "$QEMU_PID" 2>/dev/null; do
  if [ "$(date +%s)" -gt "$deadline" ]; then
    kill "$QEMU_PID"
    tail -n 60 "$WORK/console.log"
    die "the VM did not finish in ${TIMEOUT_S}s (console above)"
  fi
  sleep 2
done
QEMU_PID=""
wait

python3 "$SRC/tests/system/summary.py" "$SHARE/results/steps.jsonl" "$(( $(date +%s) - start ))" ||
  { tail -n 80 "$WORK/console.log"; exit 1; }
exit
}
