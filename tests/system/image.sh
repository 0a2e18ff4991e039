#!/usr/bin/env bash
# The recipe of the system-check VM: a Debian 13 trixie root (amd64 or arm64) made by debootstrap, with
# Debian's own kernel, systemd as PID 1, snd-aloop loaded at boot and the boot-time unit that
# runs tests/system/vm_steps.py from the 9p share. check.sh keys its cache by this file's hash,
# so any change here rebuilds the image.
#
#   bash tests/system/image.sh OUTDIR MIRROR ARCH   # writes OUTDIR/{root.img,vmlinuz,initrd.img}
set -eu

OUT=$1
MIRROR=$2
ARCH=$3
ROOTFS="$OUT/rootfs"
PACKAGES=systemd-sysv,udev,kmod,dbus,linux-image-$ARCH,initramfs-tools,ca-certificates,python3,iproute2

rm -rf "$ROOTFS"
mkdir -p "$ROOTFS"
# A foreign ARCH runs its second stage through qemu-user (binfmt_misc, set up by check.sh).
debootstrap --arch="$ARCH" --variant=minbase --include="$PACKAGES" trixie "$ROOTFS" "$MIRROR" \
  > "$OUT/debootstrap.log" 2>&1 || { tail -n 20 "$OUT/debootstrap.log"; exit 1; }

cat > "$ROOTFS/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $MIRROR
Suites: trixie trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
rm -f "$ROOTFS/etc/apt/sources.list"
# The same path to the archive and PyPI as this machine: its apt settings, pip settings and CA
# bundle (HTTPS here may pass a re-signing proxy), reached through qemu's user-mode network.
for conf in /etc/apt/apt.conf.d/*; do
  grep -q -i -E 'proxy|Check-Valid-Until|Check-Date' "$conf" 2>/dev/null && cp "$conf" "$ROOTFS$conf"
done
for conf in /etc/pip.conf /etc/xdg/pip/pip.conf /etc/xdg/pip/constraints.txt; do
  if [ -f "$conf" ]; then mkdir -p "$ROOTFS$(dirname "$conf")"; cp "$conf" "$ROOTFS$conf"; fi
done
cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/usr/local/share/ca-certificates/build-host.crt"
chroot "$ROOTFS" update-ca-certificates > /dev/null 2>&1

echo pttd-vm > "$ROOTFS/etc/hostname"
printf '127.0.1.1 pttd-vm\n' >> "$ROOTFS/etc/hosts"
printf '/dev/vda / ext4 defaults 0 1\n' > "$ROOTFS/etc/fstab"
# qemu's user-mode network: fixed addresses, its DNS forwards to this machine's resolver.
cat > "$ROOTFS/etc/systemd/network/10-slirp.network" <<'NET'
[Match]
Name=en* eth*

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
NET
printf 'nameserver 10.0.2.3\n' > "$ROOTFS/etc/resolv.conf"
printf 'snd-aloop\n' > "$ROOTFS/etc/modules-load.d/snd-aloop.conf"
# Two loopback cards, the microphone's and the speaker's, so one can be removed alone.
printf 'options snd-aloop enable=1,1 index=0,1 id=Loopback,Speaker pcm_substreams=1,1\n' \
  > "$ROOTFS/etc/modprobe.d/snd-aloop.conf"

cat > "$ROOTFS/etc/systemd/system/pttd-vm-check.service" <<'UNIT'
[Unit]
Description=pttd system check (tests/system/vm_steps.py from the host's share)
Wants=network-online.target
After=network-online.target pttd.service

[Service]
Type=oneshot
ExecStartPre=/bin/mkdir -p /mnt/share
ExecStartPre=/bin/mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 share /mnt/share
ExecStart=/usr/bin/python3 -u /mnt/share/src/tests/system/vm_steps.py
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
UNIT
chroot "$ROOTFS" systemctl enable systemd-networkd systemd-networkd-wait-online \
  pttd-vm-check.service > /dev/null 2>&1
chroot "$ROOTFS" systemctl mask getty@tty1.service serial-getty@ttyS0.service \
  apt-daily.timer apt-daily-upgrade.timer > /dev/null 2>&1
chroot "$ROOTFS" passwd -d root > /dev/null

cp -L "$ROOTFS/vmlinuz" "$OUT/vmlinuz"
cp -L "$ROOTFS/initrd.img" "$OUT/initrd.img"
rm -f "$OUT/root.img"
mkfs.ext4 -q -L pttd-root -d "$ROOTFS" "$OUT/root.img" 3G
rm -rf "$ROOTFS"
