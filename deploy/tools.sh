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
#   deploy/tools.sh flights    the vega-datasets package (npm, BSD-3; its data: US DOT/BTS on-time records,
#                              public domain) for its 3 million US domestic flights of January–June
#                              2001, turned with chDB into departures per 5 minutes of ten airports
#                              (ranks 1, 4, …, 28 by flights: hubs to mid-size) that benchdetect scores
#                              on; prints the CSV's path (time,tenant,source,count: gapwatch backtest reads it)
#   deploy/tools.sh shippers   the log shippers the ingest integration tests run against Kafka:
#                              rsyslog with omkafka and syslog-ng with its Kafka module, each with apt
#                              if that removes no package, else unpacked into $STATE/rsyslog or
#                              $STATE/syslog-ng (Debian's rsyslog and syslog-ng-core conflict: one is
#                              unpacked); prints both binaries. No system log daemon is started.
#   deploy/tools.sh all        chdb, chromium, node and shippers
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

# with_service_policy runs "$@" (an apt-get install) with a policy-rc.d that forbids service
# actions, so that a package's postinst starts no system daemon (the standard Debian mechanism, as
# deploy/services.sh does). Only a policy-rc.d of ours is removed afterwards.
with_service_policy() {
  local policy=/usr/sbin/policy-rc.d added=0 rc=0
  if [[ -e $policy ]] && grep -q 'added by gapwatch' "$policy" 2>/dev/null; then
    added=1
  elif [[ ! -e $policy ]]; then
    as_root sh -c "printf '#!/bin/sh\n# added by gapwatch deploy/tools.sh during apt-get install\nexit 101\n' > $policy && chmod 755 $policy"
    added=1
  fi
  "$@" || rc=$?
  if ((added)); then as_root rm -f "$policy" || true; fi
  return $rc
}

# stop_system_daemon stops a system-wide daemon an install may have started anyway (an init
# system that ignores policy-rc.d): the one whose pid file is $2, by its init script $1.
stop_system_daemon() {
  local service=$1 pidfile=$2 pid
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile" 2>/dev/null) || return 0
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  log "stopping the system $service that the install started (pid $pid)"
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    as_root systemctl disable --now "$service" || true
  else
    as_root service "$service" stop || as_root kill "$pid" || true
  fi
}

installed() { dpkg-query -W -f '${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# unpack_debs DIR PKG...: downloads the packages (apt-get download) and unpacks them into DIR
# without installing them — no maintainer scripts, no clash with the system's log daemon — after
# installing (apt) the libraries they depend on outside the set.
unpack_debs() {
  local dir=$1 tmp deps=() d f
  shift
  tmp=$(mktemp -d)
  chmod 755 "$tmp" # apt's _apt user writes the download there
  if [[ -z $APT_UPDATED ]]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  (cd "$tmp" && as_root apt-get download -qq "$@" 2>/dev/null) || { rm -rf "$tmp"; die "apt-get download $* failed"; }
  for d in $(for f in "$tmp"/*.deb; do dpkg-deb -f "$f" Depends; done | tr ',' '\n' |
    sed 's/|.*//; s/(.*)//; s/[[:space:]]//g' | sort -u); do
    [[ " $* " == *" $d "* ]] || installed "$d" || deps+=("$d")
  done
  if ((${#deps[@]})); then
    log "installing their libraries: ${deps[*]} (apt)"
    apt_install "${deps[@]}"
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  for f in "$tmp"/*.deb; do dpkg-deb -x "$f" "$dir"; done
  rm -rf "$tmp"
  echo "$*" >"$dir/.gapwatch-unpacked"
}

# install_log_daemon NAME BIN PIDFILE PKG...: the log daemon NAME with its Kafka module; prints
# its binary. Installed with apt (no service started) when that removes no package; otherwise —
# Debian's rsyslog and syslog-ng-core conflict, so only one of them can be installed — unpacked
# into $STATE/NAME, leaving the installed daemon alone.
install_log_daemon() {
  local name=$1 bin=$2 pidfile=$3 missing=() p
  shift 3
  for p in "$@"; do installed "$p" || missing+=("$p"); done
  if ((${#missing[@]} == 0)); then echo "$bin"; return; fi
  local dir=$STATE/$name
  if [[ -x $dir$bin && $(cat "$dir/.gapwatch-unpacked" 2>/dev/null) == "$*" ]]; then echo "$dir$bin"; return; fi
  if [[ -z $APT_UPDATED ]]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  local removes
  removes=$(as_root env DEBIAN_FRONTEND=noninteractive apt-get install -s --no-install-recommends "${missing[@]}" 2>/dev/null |
    awk '/^Remv /{print $2}' | tr '\n' ' ')
  if [[ -z $removes ]]; then
    log "installing ${missing[*]} (apt; no service started)"
    with_service_policy apt_install "${missing[@]}"
    stop_system_daemon "$name" "$pidfile"
    [[ -x $bin ]] || die "no $bin after installing ${missing[*]}"
    echo "$bin"
    return
  fi
  log "unpacking $* into $dir (installing them would remove: $removes)"
  unpack_debs "$dir" "$@"
  [[ -x $dir$bin ]] || die "no $dir$bin after unpacking $*"
  echo "$dir$bin"
}

install_shippers() {
  local rsyslogd syslogng lib
  rsyslogd=$(install_log_daemon rsyslog /usr/sbin/rsyslogd /run/rsyslogd.pid rsyslog rsyslog-kafka)
  [[ -n $(find "${rsyslogd%/usr/sbin/rsyslogd}/usr/lib" -path '*/rsyslog/omkafka.so' -print -quit) ]] ||
    die "no omkafka module beside $rsyslogd"
  syslogng=$(install_log_daemon syslog-ng /usr/sbin/syslog-ng /run/syslog-ng.pid syslog-ng-core syslog-ng-mod-rdkafka)
  lib=${syslogng%/usr/sbin/syslog-ng}/usr/lib/syslog-ng
  [[ -n $(find "$lib" -name libkafka.so -print -quit) ]] || die "no kafka module in $lib"
  LD_LIBRARY_PATH=$lib "$syslogng" --version >/dev/null || die "$syslogng does not run (missing libraries?)"
  echo "$rsyslogd"
  echo "$syslogng"
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

install_flights() {
  local py dir csv tgz version=2.11.0
  dir=$STATE/data
  csv=$dir/flights-2001-departures-5m-v2.csv
  if [[ -s $csv ]]; then echo "$csv"; return; fi
  py=$(install_chdb)
  command -v npm >/dev/null || install_node >/dev/null
  mkdir -p "$dir"
  tgz=$dir/vega-datasets-$version.tgz
  if [[ ! -s $tgz ]]; then
    log "fetching vega-datasets $version (npm, 17 MB) for the flights counts"
    # npm pack checks the tarball against the registry's integrity hash.
    (cd "$dir" && npm pack --silent "vega-datasets@$version" >/dev/null) || die "npm pack vega-datasets@$version failed"
  fi
  tar -xzf "$tgz" -C "$dir" package/data/flights-3m.parquet
  # Dates are MMddHHmm local departure times of 2001 (1 January was a Monday).
  "$py" - "$dir/package/data/flights-3m.parquet" "$csv.tmp" <<'PY' || die "converting the flights to counts failed"
import sys, chdb
src, dst = sys.argv[1], sys.argv[2]
q = f'''
WITH toDateTime(concat('2001-', substring(date, 1, 2), '-', substring(date, 3, 2), ' ',
                       substring(date, 5, 2), ':', substring(date, 7, 2), ':00'), 'UTC') AS t,
     (SELECT groupArray(origin) FROM (SELECT origin, count() AS c FROM file('{src}', Parquet)
                                      GROUP BY origin ORDER BY c DESC, origin LIMIT 30)) AS top
SELECT concat(replaceOne(toString(toStartOfFiveMinute(t), 'UTC'), ' ', 'T'), 'Z') AS time, 'bts' AS tenant, origin AS source, count() AS count
FROM file('{src}', Parquet)
WHERE indexOf(top, origin) % 3 = 1
GROUP BY time, source ORDER BY time, source
'''
with open(dst, 'wb') as f:
    f.write(b'time,tenant,source,count\n')
    f.write(chdb.query(q, 'CSV').bytes().replace(b'"', b''))
PY
  rm -rf "$dir/package"
  mv "$csv.tmp" "$csv"
  echo "$csv"
}

case ${1:-all} in
  chdb) install_chdb ;;
  chromium) install_chromium ;;
  node) install_node ;;
  bikeshare) install_bikeshare ;;
  flights) install_flights ;;
  shippers) install_shippers ;;
  all) install_chdb; install_chromium; install_node; install_shippers ;;
  *) die "usage: deploy/tools.sh chdb|chromium|node|shippers|bikeshare|flights|all" ;;
esac
