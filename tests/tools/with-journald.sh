#!/usr/bin/env bash
# Runs a command next to a real systemd-journald in a private mount namespace, then writes the
# journal as JSON lines. Exits with the command's status. Usage: unshare -m --propagation private with-journald.sh OUT.json CMD...
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
# The command runs in the background so SIGTERM/SIGINT sent to this script reach it (a daemon
# under test must see its own signals), and its exit status is kept.
"$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM
trap 'kill -INT "$child" 2>/dev/null' INT
rc=0
wait "$child" || rc=$?
while kill -0 "$child" 2>/dev/null; do
  rc=0
  wait "$child" || rc=$?
done
trap - TERM INT
journalctl --sync 2>/dev/null || sleep 0.3
journalctl -D /run/log/journal -o json --no-pager > "$out" || true
kill "$jpid"
wait "$jpid" 2>/dev/null || true
exit "$rc"
