#!/usr/bin/env bash
# Runs a command next to a real systemd-journald in a private mount namespace, then writes the
# journal as JSON lines. Usage: unshare -m --propagation private with-journald.sh OUT.json CMD...
set -eu
out=$1
shift
mkdir -p /run/systemd /run/log
mount -t tmpfs tmpfs /run/systemd
mount -t tmpfs tmpfs /run/log
mkdir -p /run/systemd/journal
/lib/systemd/systemd-journald &
jpid=$!
for _ in $(seq 100); do
  [ -S /run/systemd/journal/socket ] && break
  sleep 0.02
done
rc=0
"$@" || rc=$?
journalctl --sync 2>/dev/null || sleep 0.3
journalctl -D /run/log/journal -o json --no-pager > "$out" || true
kill "$jpid"
wait "$jpid" 2>/dev/null || true
exit "$rc"
