#!/usr/bin/env bash
# Installs pttd on Raspberry Pi OS / Debian 12 or newer from this checkout. Safe to run again:
# a second run changes nothing and says so.
#
#   sudo ./install.sh [--api-key-file FILE]     install or update
#   sudo ./install.sh --uninstall [--purge]     remove (--purge also removes config and key)
#   ./install.sh --root DIR ...                 install into a throwaway root (tests)
set -eu

usage() {
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'EOF'
Options:
  --api-key-file FILE  copy the Gemini API key from FILE to /etc/pttd/api_key (mode 0600)
  --uninstall          remove pttd (keeps /etc/pttd unless --purge)
  --purge              with --uninstall: also remove /etc/pttd (config and key)
  --root DIR           install under DIR; no apt, no systemctl on this machine
  --no-apt             do not install Debian packages
  -h, --help           this text
EOF
}

SRC=$(cd "$(dirname "$0")" && pwd)
ROOT=""
KEY_FILE=""
UNINSTALL=0
PURGE=0
NO_APT=0
while [ $# -gt 0 ]; do
  case "$1" in
    --api-key-file) KEY_FILE=${2:?--api-key-file needs a file}; shift 2 ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    --root) ROOT=$(realpath -m "${2:?--root needs a directory}"); NO_APT=1; shift 2 ;;
    --no-apt) NO_APT=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

OPT="$ROOT/opt/pttd"
VENV="$OPT/venv"
ETC="$ROOT/etc/pttd"
UNIT_DIR="$ROOT/etc/systemd/system"
UNIT="$UNIT_DIR/pttd.service"
WANTS="$UNIT_DIR/multi-user.target.wants/pttd.service"
LINK="$ROOT/usr/local/bin/pttd"
# procps: the unit's ExecReload= is /bin/kill, which a minimal Debian root does not have.
APT_PACKAGES="python3 python3-venv python3-dev python3-numpy gcc pkg-config libasound2-dev
  libsystemd-dev alsa-utils procps"
CHANGED=0

say() { printf '>> %s\n' "$*"; }
changed() { CHANGED=1; say "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || [ -n "$ROOT" ] || die "run as root: sudo $0 $*"

systemctl_host() {
  # Only ever on the machine itself, never for a --root install.
  if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
    systemctl "$@"
  fi
}

check_platform() {
  [ -r "$ROOT/etc/os-release" ] || [ -r /etc/os-release ] || die "no /etc/os-release: not Debian?"
  # shellcheck disable=SC1091
  . /etc/os-release
  case "${ID:-}:${ID_LIKE:-}" in
    debian:*|raspbian:*|*:*debian*) ;;
    *) die "pttd installs on Debian or Raspberry Pi OS; this is ${PRETTY_NAME:-unknown}" ;;
  esac
  if [ "${VERSION_ID:-0}" -lt 12 ] 2>/dev/null; then
    die "Debian 12 (bookworm) or newer is needed; this is ${PRETTY_NAME:-unknown}"
  fi
}

check_python() {
  command -v python3 >/dev/null 2>&1 || die "python3 is missing (apt-get install python3)"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "Python 3.11 or newer is needed; this is $(python3 --version 2>&1)"
}

install_apt() {
  [ "$NO_APT" -eq 0 ] || return 0
  local missing="" pkg
  # On a Pi 5 gpiozero needs lgpio; Raspberry Pi OS has it as a package.
  if apt-cache show python3-lgpio >/dev/null 2>&1; then
    APT_PACKAGES="$APT_PACKAGES python3-lgpio"
  fi
  for pkg in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
      missing="$missing $pkg"
  done
  [ -n "$missing" ] || return 0
  changed "installing Debian packages:$missing"
  apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
}

ensure_group() {
  if ! grep -q "^$1:" "$ROOT/etc/group" 2>/dev/null; then
    groupadd ${ROOT:+--root "$ROOT"} --system "$1"
    changed "created group $1"
  fi
}

ensure_user() {
  ensure_group audio
  ensure_group gpio
  if ! grep -q '^pttd:' "$ROOT/etc/passwd" 2>/dev/null; then
    useradd ${ROOT:+--root "$ROOT"} --system --user-group --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin --groups audio,gpio pttd
    changed "created system user pttd (groups audio, gpio)"
  fi
}

source_hash() {
  # What pip builds in the checkout (build/, *.egg-info) must not count as a change.
  (cd "$SRC" && { git ls-files 2>/dev/null || find . -type f | sed 's|^\./||'; } |
    grep -v -E '^(tests/|\.venv/|\.git/|build/)|\.egg-info/|__pycache__/' | LC_ALL=C sort |
    xargs sha256sum) | sha256sum | cut -d' ' -f1
}

install_venv() {
  local want have=""
  want=$(source_hash)
  [ -r "$OPT/.source-sha256" ] && have=$(cat "$OPT/.source-sha256")
  if [ "$want" = "$have" ] && [ -x "$VENV/bin/pttd" ]; then
    return 0
  fi
  mkdir -p "$OPT"
  if [ ! -x "$VENV/bin/python" ]; then
    # System site packages: numpy (and lgpio on a Pi 5) come from apt, prebuilt for the Pi.
    python3 -m venv --system-site-packages "$VENV"
  fi
  say "installing pttd into $VENV (pyalsaaudio and systemd-python compile: a few minutes on a Pi Zero)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-input "$SRC"
  install -m 0644 "$SRC/README.md" "$OPT/README.md"
  printf '%s\n' "$want" > "$OPT/.source-sha256"
  changed "installed pttd $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("pttd"))')"
}

install_link() {
  # `pttd check`, `pttd status`, ... for everyone, without the venv's path.
  if [ "$(readlink "$LINK" 2>/dev/null)" != /opt/pttd/venv/bin/pttd ]; then
    install -d -m 0755 "$(dirname "$LINK")"
    ln -sfn /opt/pttd/venv/bin/pttd "$LINK"
    changed "linked $LINK -> /opt/pttd/venv/bin/pttd"
  fi
}

install_config() {
  install -d -m 0755 "$ETC"
  if [ ! -e "$ETC/pttd.toml" ]; then
    install -m 0644 "$SRC/config/pttd.toml" "$ETC/pttd.toml"
    changed "wrote $ETC/pttd.toml"
  elif ! cmp -s "$SRC/config/pttd.toml" "$ETC/pttd.toml"; then
    if ! cmp -s "$SRC/config/pttd.toml" "$ETC/pttd.toml.new" 2>/dev/null; then
      install -m 0644 "$SRC/config/pttd.toml" "$ETC/pttd.toml.new"
      changed "kept your $ETC/pttd.toml; the new default is beside it as pttd.toml.new (compare: diff $ETC/pttd.toml $ETC/pttd.toml.new)"
    fi
  fi
}

install_key() {
  local dest="$ETC/api_key" key=""
  if [ -n "$KEY_FILE" ]; then
    [ -r "$KEY_FILE" ] || die "--api-key-file $KEY_FILE: cannot read it"
    key=$(tr -d '[:space:]' < "$KEY_FILE")
    [ -n "$key" ] || die "--api-key-file $KEY_FILE: the file is empty"
  elif [ ! -s "$dest" ] && [ -t 0 ]; then
    printf 'Gemini API key (input hidden; Enter to skip): '
    IFS= read -rs key || true
    printf '\n'
  fi
  if [ -n "$key" ]; then
    if [ -s "$dest" ] && [ "$(cat "$dest")" = "$key" ]; then
      :
    else
      (umask 077 && printf '%s\n' "$key" > "$dest.tmp")
      mv "$dest.tmp" "$dest"
      changed "stored the API key in $dest"
    fi
  fi
  if [ -e "$dest" ]; then
    if [ "$(stat -c %a "$dest")" != 600 ]; then chmod 0600 "$dest"; changed "made $dest mode 0600"; fi
    if [ -z "$ROOT" ] && [ "$(stat -c %u:%g "$dest")" != 0:0 ]; then
      chown root:root "$dest"; changed "made $dest owned by root"
    fi
  fi
}

install_unit() {
  install -d -m 0755 "$UNIT_DIR" "$UNIT_DIR/multi-user.target.wants"
  if ! cmp -s "$SRC/systemd/pttd.service" "$UNIT"; then
    install -m 0644 "$SRC/systemd/pttd.service" "$UNIT"
    systemctl_host daemon-reload
    changed "installed $UNIT"
  fi
  if [ ! -L "$WANTS" ]; then
    ln -sf /etc/systemd/system/pttd.service "$WANTS"
    changed "enabled pttd.service (starts at boot)"
  fi
}

run_check() {
  local pttd="$VENV/bin/pttd"
  say "pttd check:"
  if [ -z "$ROOT" ]; then
    CREDENTIALS_DIRECTORY="" "$pttd" check --config "$ETC/pttd.toml" || CHECK_FAILED=1
  else
    # A throwaway root has no sound card, and the config's key path names the real /etc.
    local key=""
    [ -r "$ETC/api_key" ] && key=$(cat "$ETC/api_key")
    GEMINI_API_KEY="$key" "$pttd" check --no-devices --config "$ETC/pttd.toml" || CHECK_FAILED=1
  fi
}

uninstall() {
  systemctl_host disable --now pttd.service 2>/dev/null || true
  local path
  for path in "$WANTS" "$UNIT" "$LINK"; do
    if [ -e "$path" ] || [ -L "$path" ]; then rm -f "$path"; changed "removed $path"; fi
  done
  systemctl_host daemon-reload
  if [ -d "$OPT" ]; then rm -rf "$OPT"; changed "removed $OPT"; fi
  if grep -q '^pttd:' "$ROOT/etc/passwd" 2>/dev/null; then
    userdel ${ROOT:+--root "$ROOT"} pttd
    changed "removed user pttd"
  fi
  if [ "$PURGE" -eq 1 ] && [ -d "$ETC" ]; then
    rm -rf "$ETC"
    changed "removed $ETC (config and key)"
  elif [ -d "$ETC" ]; then
    say "kept $ETC (config and key); --purge removes them"
  fi
  [ "$CHANGED" -eq 1 ] || say "pttd is not installed: nothing to remove"
}

if [ "$UNINSTALL" -eq 1 ]; then
  uninstall
  exit 0
fi

check_platform
check_python
install_apt
ensure_user
install_venv
install_link
install_config
install_key
install_unit
CHECK_FAILED=0
run_check

echo
if [ "$CHANGED" -eq 0 ]; then
  say "pttd is already installed and up to date: nothing to change"
else
  say "pttd is installed"
fi
if [ ! -s "$ETC/api_key" ]; then
  say "no API key yet: run  sudo $0 --api-key-file FILE  (or put it in $ETC/api_key, chmod 600)"
fi
[ "$CHECK_FAILED" -eq 0 ] || say "pttd check found a problem (above): fix it before starting pttd"
cat <<EOF

Next steps:
  sudo nano /etc/pttd/pttd.toml      # devices, button pin, voice, ... (every key is documented)
  sudo systemctl start pttd          # or: sudo systemctl restart pttd after a change
  journalctl -u pttd -f              # watch it; pttd status shows its state
EOF
