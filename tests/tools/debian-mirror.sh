#!/usr/bin/env bash
# Prints this machine's own Debian mirror, read from its apt sources (never hard-coded), for
# debootstrap:  debootstrap trixie ROOT "$(bash tests/tools/debian-mirror.sh)"
set -eu
uri=$(grep -h -o -E '^URIs: *[^ ]+/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null |
      head -n1 | sed 's/^URIs: *//') || true
[ -n "$uri" ] || uri=$(grep -h -o -E '^deb +[^ ]+/debian/? ' /etc/apt/sources.list 2>/dev/null |
                       head -n1 | awk '{print $2}') || true
if [ -z "$uri" ]; then
  echo "debian-mirror.sh: no Debian mirror found in /etc/apt/sources.list*" >&2
  exit 1
fi
printf '%s\n' "$uri"
