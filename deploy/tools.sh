#!/usr/bin/env bash
# Test and build tools that `make test`, `make bench` and `make plugin` need beyond Go, installed on
# first use so that those targets work on a bare Debian machine (Go, Java, Maven, Python present):
#
#   deploy/tools.sh chdb       Python virtualenv $STATE/venv with chDB (current ClickHouse, embedded)
#                              for the SQL check; prints the interpreter's path
#   deploy/tools.sh chromium   Debian's chromium for the coverage page's browser test (apt)
#   deploy/tools.sh node       Node.js and npm for the Grafana plugin's frontend (apt, if missing)
#   deploy/tools.sh bikeshare  the ISLP package (PyPI, into the virtualenv) for its copy of the UCI
#                              Bike Sharing counts that benchdetect scores on; prints the CSV's path
#   deploy/tools.sh all        chdb, chromium and node
#
# Everything lands in $GAPWATCH_STATE_DIR (default <repo>/.state, git-ignored) or comes from apt.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
STATE=${GAPWATCH_STATE_DIR:-$REPO/.state}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
VENV=$STATE/venv
# Set to pin chDB's version (default: the newest PyPI serves).
CHDB_VERSION=${GAPWATCH_CHDB_VERSION:-}

log() { printf 'tools: %s\n' "$*" >&2; }
die() { printf 'tools: error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif [[ -t 0 ]]; then sudo "$@"
  else sudo -n "$@" || die "need root for: $* (run as root, or allow sudo)"; fi
}

APT_UPDATED=
apt_install() {
  if [[ -z $APT_UPDATED ]]; then
    as_root apt-get update -qq
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

install_chdb() {
  if [[ -x $VENV/bin/python ]] && "$VENV/bin/python" -c 'import chdb' 2>/dev/null; then
    echo "$VENV/bin/python"
    return
  fi
  local py
  py=$(command -v python3) || die "python3 is required"
  if ! "$py" -m venv --help >/dev/null 2>&1 || ! "$py" -c 'import ensurepip' 2>/dev/null; then
    log "installing python3-venv (apt)"
    apt_install python3-venv
  fi
  log "creating $VENV with chdb (PyPI)"
  rm -rf "$VENV"
  "$py" -m venv "$VENV"
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
    "$VENV/bin/python" -m pip install --quiet "chdb${CHDB_VERSION:+==$CHDB_VERSION}"
  "$VENV/bin/python" -c 'import chdb' || die "chdb did not import after installing"
  echo "$VENV/bin/python"
}

install_chromium() {
  if command -v chromium >/dev/null 2>&1; then
    command -v chromium
    return
  fi
  log "installing chromium (apt)"
  apt_install chromium fonts-dejavu-core
  command -v chromium
}

install_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    log "installing nodejs and npm (apt)"
    apt_install nodejs npm
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  (( major >= 20 )) || die "the plugin's frontend needs Node.js 20 or later, found $(node --version)"
  command -v node
}

install_bikeshare() {
  local py csv find
  py=$(install_chdb)
  # Found, not imported: only its data is wanted (installed without its dependencies).
  find='import importlib.util, os; s = importlib.util.find_spec("ISLP"); print(os.path.join(os.path.dirname(s.origin), "data", "Bikeshare.csv") if s else "")'
  csv=$("$py" -c "$find")
  if [[ -z $csv || ! -f $csv ]]; then
    log "installing ISLP (PyPI) for the Bikeshare counts"
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 "$py" -m pip install --quiet --no-deps islp
    csv=$("$py" -c "$find")
  fi
  [[ -f $csv ]] || die "no Bikeshare.csv in the ISLP package"
  echo "$csv"
}

case ${1:-all} in
  chdb) install_chdb ;;
  chromium) install_chromium ;;
  node) install_node ;;
  bikeshare) install_bikeshare ;;
  all) install_chdb; install_chromium; install_node ;;
  *) die "usage: deploy/tools.sh chdb|chromium|node|bikeshare|all" ;;
esac
