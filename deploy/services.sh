#!/usr/bin/env bash
# Local real servers for gapwatch: Apache Kafka (KRaft, single node) and ClickHouse.
#
#   deploy/services.sh [start]   install on first use, start both, wait until they answer
#   deploy/services.sh stop      stop both (SIGTERM, then SIGKILL after 30 s)
#   deploy/services.sh status    running/stopped for each; exit 0 if both up, else 3
#   deploy/services.sh install   only install (apt packages, Kafka jars); start nothing
#   deploy/services.sh kafka-topics ARGS | kafka-consumer-groups ARGS
#                                Kafka's CLIs (--bootstrap-server 127.0.0.1:9092 added if absent)
#
# State (data, logs, pid files, rendered configs, Kafka jars) lives in $GAPWATCH_STATE_DIR,
# by default <repo>/.state. Ports can be moved (GAPWATCH_SERVICES_*_PORT) to run a second,
# independent pair next to the first. See deploy/README.md.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
STATE=${GAPWATCH_STATE_DIR:-$REPO/.state}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
START_TIMEOUT=${GAPWATCH_START_TIMEOUT:-90}
STOP_TIMEOUT=${GAPWATCH_STOP_TIMEOUT:-30}

KAFKA_HOST=127.0.0.1
KAFKA_PORT=${GAPWATCH_SERVICES_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${GAPWATCH_SERVICES_KAFKA_CONTROLLER_PORT:-9093}
# SASL_SSL listener (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN over TLS); set empty for none.
KAFKA_SASL_PORT=${GAPWATCH_SERVICES_KAFKA_SASL_PORT-9094}
# SSL listener (TLS only, no SASL; 9093 is the controller's); set empty for none.
KAFKA_SSL_PORT=${GAPWATCH_SERVICES_KAFKA_SSL_PORT-9095}
CH_HOST=127.0.0.1
CH_TCP_PORT=${GAPWATCH_SERVICES_CH_PORT:-9000}
CH_HTTP_PORT=${GAPWATCH_SERVICES_CH_HTTP_PORT:-8123}
# ClickHouse's secure native port (TLS); set empty for none.
CH_TLS_PORT=${GAPWATCH_SERVICES_CH_TLS_PORT-9440}

# Throwaway CA and a server certificate for 127.0.0.1/localhost, made on first start.
TLS_DIR=$STATE/tls
# The SASL_SSL listener's test user. Its password is made on first use (random, in
# $TLS_DIR/sasl-password, never in the repository); tests read it there.
SASL_USER=gapwatch
SASL_PASSWORD_FILE=$TLS_DIR/sasl-password
if [[ ! -s $SASL_PASSWORD_FILE ]]; then
  mkdir -p "$TLS_DIR"
  (umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$SASL_PASSWORD_FILE")
  rm -f "$STATE/kafka/scram-users.done" # a user made with an earlier password gets this one
fi
SASL_PASSWORD=$(<"$SASL_PASSWORD_FILE")

KAFKA_DIR=$STATE/kafka
KAFKA_LIBS=$KAFKA_DIR/libs
KAFKA_PID=$KAFKA_DIR/kafka.pid
KAFKA_LOG=$KAFKA_DIR/kafka.log      # log4j2 (see deploy/kafka/log4j2.xml)
KAFKA_OUT=$KAFKA_DIR/kafka.out      # JVM stdout/stderr (normally empty)
KAFKA_HEAP=${GAPWATCH_KAFKA_HEAP:--Xms256m -Xmx768m}
POM=$SCRIPT_DIR/kafka/pom.xml

CH_DIR=$STATE/clickhouse
CH_PID=$CH_DIR/clickhouse.pid
CH_LOG=$CH_DIR/log/clickhouse-server.log
CH_ERR=$CH_DIR/log/clickhouse-server.err.log
CH_OUT=$CH_DIR/log/stdout.log

log() { printf 'services: %s\n' "$*"; }
die() { printf 'services: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

# ---------------------------------------------------------------------------------------------
# install
# ---------------------------------------------------------------------------------------------

ch_server_bin() {
  if command -v clickhouse-server >/dev/null 2>&1; then command -v clickhouse-server
  elif [[ -x /usr/sbin/clickhouse-server ]]; then echo /usr/sbin/clickhouse-server
  else return 1; fi
}

ch_client() { clickhouse-client --host "$CH_HOST" --port "$CH_TCP_PORT" "$@"; }

# Run a command as root: directly, or via sudo (checked up front by ensure_root).
as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif [[ -t 0 ]]; then sudo "$@"
  else sudo -n "$@"; fi
}

# Fail early, in one line, when we cannot become root to install packages.
ensure_root() {
  local hint="as root run: apt-get install -y --no-install-recommends $1, then retry"
  [[ $(id -u) -eq 0 ]] && return 0
  command -v sudo >/dev/null 2>&1 || die "missing packages and not root (no sudo): $hint"
  [[ -t 0 ]] || sudo -n true 2>/dev/null || die "missing packages and sudo needs a password (no terminal): $hint"
}

install_apt_packages() {
  local missing=()
  ch_server_bin >/dev/null || missing+=(clickhouse-server)
  command -v clickhouse-client >/dev/null 2>&1 || missing+=(clickhouse-client)
  command -v kcat >/dev/null 2>&1 || missing+=(kcat)
  # curl is used for the HTTP ping; cheap to add while apt runs anyway.
  if ((${#missing[@]})) && ! command -v curl >/dev/null 2>&1; then missing+=(curl); fi
  ((${#missing[@]})) || return 0

  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get here: install them with your package manager, then retry"
  ensure_root "${missing[*]}"
  log "installing apt packages: ${missing[*]}"
  local t0; t0=$(now)

  # Keep the package's postinst from starting the system-wide clickhouse-server (init script on
  # port 9000 with /etc/clickhouse-server, which would collide with ours): a policy-rc.d that
  # forbids service actions, the standard Debian mechanism. Only ours is removed afterwards.
  local policy=/usr/sbin/policy-rc.d added_policy=0
  # (a leftover of ours from an interrupted run is reused and removed)
  if [[ -e $policy ]] && grep -q 'added by gapwatch' "$policy" 2>/dev/null; then
    added_policy=1
  elif [[ ! -e $policy ]]; then
    as_root sh -c "printf '#!/bin/sh\n# added by gapwatch deploy/services.sh during apt-get install\nexit 101\n' > $policy && chmod 755 $policy"
    added_policy=1
  fi
  local rc=0 aptlog=$STATE/apt.log
  {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
  } </dev/null >"$aptlog" 2>&1 || rc=$?
  if ((added_policy)); then as_root rm -f "$policy" || true; fi
  if ((rc != 0)); then
    tail -n 20 "$aptlog" >&2
    die "apt-get install ${missing[*]} failed (exit $rc; full log: $aptlog)"
  fi
  log "apt packages installed in $(elapsed "$t0")"
}

check_java() {
  command -v java >/dev/null 2>&1 || die "java not found: Kafka 4.x needs Java 17+ (apt-get install openjdk-17-jre-headless)"
  command -v mvn >/dev/null 2>&1 || [[ -f $KAFKA_LIBS/.pom.sha256 ]] || die "mvn not found: needed once to fetch the Kafka jars (apt-get install maven)"
  local v
  v=$(java -version 2>&1 | awk -F'"' '/version/ { print $2; exit }')
  v=${v%%.*}
  if [[ ! $v =~ ^[0-9]+$ ]] || ((v < 17)); then die "java is version '$v'; Kafka 4.x needs Java 17+"; fi
}

pom_hash() { sha256sum "$POM" | awk '{ print $1 }'; }

# Fetch the Kafka jars with Maven into $KAFKA_LIBS; only when pom.xml changed (hash stamp).
install_kafka_libs() {
  local want; want=$(pom_hash)
  if [[ -f $KAFKA_LIBS/.pom.sha256 && $(<"$KAFKA_LIBS/.pom.sha256") == "$want" ]]; then
    return 0
  fi
  log "fetching Kafka jars with Maven (deploy/kafka/pom.xml) into $KAFKA_LIBS"
  local t0; t0=$(now)
  mkdir -p "$KAFKA_DIR"
  local tmp=$KAFKA_DIR/libs.tmp mvnlog=$KAFKA_DIR/mvn.log
  rm -rf "$tmp"
  if ! mvn -B -q -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp" </dev/null >"$mvnlog" 2>&1; then
    tail -n 30 "$mvnlog" >&2
    die "mvn dependency:copy-dependencies failed (full log: $mvnlog)"
  fi
  ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "Maven ran but no kafka_2.13 jar in $tmp (see $mvnlog)"
  echo "$want" >"$tmp/.pom.sha256"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
  log "Kafka jars ready ($(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars) in $(elapsed "$t0")"
}

do_install() {
  install_apt_packages
  check_java
  install_kafka_libs
}

# ---------------------------------------------------------------------------------------------
# process helpers
# ---------------------------------------------------------------------------------------------

# pid from the pid file if that process is alive and is what we started (guards against pid reuse).
live_pid() {
  local pidfile=$1 pattern=$2 pid
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern" || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

kafka_ready() {
  kcat -L -b "$KAFKA_HOST:$KAFKA_PORT" -m 5 2>/dev/null | grep -q "broker 1 at $KAFKA_HOST:$KAFKA_PORT"
}

ch_ready() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -m 5 "http://$CH_HOST:$CH_HTTP_PORT/ping" >/dev/null 2>&1 || return 1
  else
    port_open "$CH_HOST" "$CH_HTTP_PORT" || return 1
  fi
  ch_client --query 'SELECT 1' >/dev/null 2>&1
}

kafka_version() {
  local jar
  for jar in "$KAFKA_LIBS"/kafka_2.13-*.jar; do
    jar=${jar##*/kafka_2.13-}
    echo "${jar%.jar}"
    return
  done
}

# Substitute @STATE@, the ports and the optional sections in a template (no sed: the path may
# contain any character).
render() {
  local content; content=$(<"$1")
  local secure_listeners='' sasl_section='' ssl_section='' ch_tls=''
  if [[ -n $KAFKA_SASL_PORT ]]; then
    secure_listeners=",SASL_SSL://$KAFKA_HOST:$KAFKA_SASL_PORT"
    sasl_section=$(<"$SCRIPT_DIR/kafka/sasl-ssl.properties.in")
  fi
  if [[ -n $KAFKA_SSL_PORT ]]; then
    secure_listeners+=",SSL://$KAFKA_HOST:$KAFKA_SSL_PORT"
    ssl_section=$(<"$SCRIPT_DIR/kafka/ssl.properties.in")
  fi
  [[ -z $CH_TLS_PORT ]] || ch_tls=$(<"$SCRIPT_DIR/clickhouse/tls.xml.in")
  content=${content//@KAFKA_SASL_SECTION@/$sasl_section}
  content=${content//@KAFKA_SSL_SECTION@/$ssl_section}
  content=${content//@CH_TLS_SECTION@/$ch_tls}
  content=${content//@STATE@/$STATE}
  content=${content//@KAFKA_PORT@/$KAFKA_PORT}
  content=${content//@KAFKA_CONTROLLER_PORT@/$KAFKA_CONTROLLER_PORT}
  content=${content//@KAFKA_SECURE_LISTENERS@/$secure_listeners}
  content=${content//@SASL_USER@/$SASL_USER}
  content=${content//@SASL_PASSWORD@/$SASL_PASSWORD}
  content=${content//@CH_TCP_PORT@/$CH_TCP_PORT}
  content=${content//@CH_HTTP_PORT@/$CH_HTTP_PORT}
  content=${content//@CH_TLS_PORT@/$CH_TLS_PORT}
  printf '%s\n' "$content" >"$2"
}

# ---------------------------------------------------------------------------------------------
# TLS material (for the SASL_SSL listener and ClickHouse's secure port)
# ---------------------------------------------------------------------------------------------

# A throwaway CA ($TLS_DIR/ca.pem: what clients trust) and a server certificate for 127.0.0.1 and
# localhost signed by it; made once per state folder.
ensure_tls() {
  [[ -n $KAFKA_SASL_PORT || -n $KAFKA_SSL_PORT || -n $CH_TLS_PORT ]] || return 0
  [[ -s $TLS_DIR/server-keystore.pem && -s $TLS_DIR/ca.pem ]] && return 0
  command -v openssl >/dev/null 2>&1 || die "openssl not found: needed once to make the test CA (apt-get install openssl)"
  log "making a throwaway CA and server certificate in $TLS_DIR"
  mkdir -p "$TLS_DIR"
  local t=$TLS_DIR
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=gapwatch local test CA" \
      -keyout "$t/ca.key" -out "$t/ca.pem" &&
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$t/server.key.tmp" -out "$t/server.csr" &&
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$t/server.ext" &&
    openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial -days 3650 \
      -extfile "$t/server.ext" -out "$t/server.pem" &&
    openssl pkcs8 -topk8 -nocrypt -in "$t/server.key.tmp" -out "$t/server.key"
  } >"$t/openssl.log" 2>&1 || { cat "$t/openssl.log" >&2; die "making the test certificates failed"; }
  rm -f "$t/server.key.tmp" "$t/server.csr" "$t/server.ext"
  chmod 600 "$t/ca.key" "$t/server.key"
  # Kafka's PEM keystore: the (unencrypted PKCS#8) key, then the certificate chain.
  cat "$t/server.key" "$t/server.pem" "$t/ca.pem" >"$t/server-keystore.pem"
  chmod 600 "$t/server-keystore.pem"
}

# ---------------------------------------------------------------------------------------------
# Kafka
# ---------------------------------------------------------------------------------------------

# JVM flags shared by the broker and the storage tool. Small heap, G1 with short pauses.
kafka_jvm_args() {
  local heap; read -r -a heap <<<"$KAFKA_HEAP"
  KAFKA_JVM=("${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExplicitGCInvokesConcurrent -XX:-OmitStackTraceInFastThrow
    -XX:ErrorFile="$KAFKA_DIR/hs_err_pid%p.log"
    -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true
    -Dkafka.logs.dir="$KAFKA_DIR"
    -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.xml"
    -cp "$KAFKA_LIBS/*")
}

kafka_java() { kafka_jvm_args; java "${KAFKA_JVM[@]}" "$@"; }

start_kafka() {
  local pid
  if pid=$(live_pid "$KAFKA_PID" kafka.Kafka); then
    if kafka_ready; then log "kafka already running (pid $pid)"; else log "kafka process $pid is up, waiting for it to answer"; fi
    return 0
  fi
  rm -f "$KAFKA_PID"

  mkdir -p "$KAFKA_DIR/data"
  ensure_tls
  render "$SCRIPT_DIR/kafka/server.properties.in" "$KAFKA_DIR/server.properties"
  cp "$SCRIPT_DIR/kafka/log4j2.xml" "$KAFKA_DIR/log4j2.xml"

  if [[ ! -f $KAFKA_DIR/data/meta.properties ]]; then
    local cid
    [[ -s $KAFKA_DIR/cluster.id ]] || kafka_java kafka.tools.StorageTool random-uuid >"$KAFKA_DIR/cluster.id"
    cid=$(<"$KAFKA_DIR/cluster.id")
    log "formatting Kafka storage (KRaft standalone, cluster id $cid)"
    # Kafka 4.x: --standalone makes this node the single voter of a dynamic quorum
    # (goes with controller.quorum.bootstrap.servers in server.properties).
    # The SCRAM user of the SASL_SSL listener is created with the metadata.
    local scram=()
    [[ -z $KAFKA_SASL_PORT ]] || scram=(--add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$SASL_PASSWORD]"
      --add-scram "SCRAM-SHA-256=[name=$SASL_USER,password=$SASL_PASSWORD]")
    if ! kafka_java kafka.tools.StorageTool format --standalone --ignore-formatted "${scram[@]}" \
          --cluster-id "$cid" --config "$KAFKA_DIR/server.properties" >>"$KAFKA_OUT" 2>&1 </dev/null; then
      tail -n 20 "$KAFKA_OUT" >&2
      die "kafka storage format failed (see $KAFKA_OUT)"
    fi
    ((${#scram[@]} == 0)) || touch "$KAFKA_DIR/scram-users.done"
  fi

  log "starting kafka"
  printf '=== %s deploy/services.sh start\n' "$(date -Is)" >>"$KAFKA_OUT"
  # setsid: own session, no controlling terminal, survives the calling make/shell.
  # 9>&- : do not leak the state lock into the daemon.
  (
    cd "$KAFKA_DIR"
    kafka_jvm_args
    exec setsid java "${KAFKA_JVM[@]}" kafka.Kafka "$KAFKA_DIR/server.properties"
  ) </dev/null >>"$KAFKA_OUT" 2>&1 9>&- &
  echo $! >"$KAFKA_PID"
}

# Storage formatted before the SASL_SSL listener existed has no SCRAM user: add it once through
# the PLAINTEXT listener.
ensure_scram_users() {
  [[ -n $KAFKA_SASL_PORT && ! -f $KAFKA_DIR/scram-users.done ]] || return 0
  log "adding the SCRAM user $SASL_USER for the SASL_SSL listener"
  kafka_jvm_args
  KAFKA_JVM=("${KAFKA_JVM[@]/#-Dkafka.logs.dir=*/-Dkafka.logs.dir=$KAFKA_DIR/tools}")
  local mech
  for mech in SCRAM-SHA-512 SCRAM-SHA-256; do # one per request: Kafka refuses two for a user at once
    if ! java "${KAFKA_JVM[@]}" kafka.admin.ConfigCommand --bootstrap-server "$KAFKA_HOST:$KAFKA_PORT" \
          --alter --entity-type users --entity-name "$SASL_USER" --add-config "$mech=[password=$SASL_PASSWORD]" \
          >>"$KAFKA_OUT" 2>&1 </dev/null; then
      tail -n 20 "$KAFKA_OUT" >&2
      die "adding the SCRAM user failed (see $KAFKA_OUT)"
    fi
  done
  touch "$KAFKA_DIR/scram-users.done"
}

# ---------------------------------------------------------------------------------------------
# ClickHouse
# ---------------------------------------------------------------------------------------------

start_clickhouse() {
  local pid bin
  if pid=$(live_pid "$CH_PID" clickhouse-server); then
    if ch_ready; then log "clickhouse already running (pid $pid)"; else log "clickhouse process $pid is up, waiting for it to answer"; fi
    return 0
  fi
  rm -f "$CH_PID"
  bin=$(ch_server_bin) || die "clickhouse-server not installed: run deploy/services.sh install"

  mkdir -p "$CH_DIR"/{etc,data,tmp,log,user_files,format_schemas}
  ensure_tls
  render "$SCRIPT_DIR/clickhouse/config.xml" "$CH_DIR/etc/config.xml"
  render "$SCRIPT_DIR/clickhouse/users.xml" "$CH_DIR/etc/users.xml"

  log "starting clickhouse"
  printf '=== %s deploy/services.sh start\n' "$(date -Is)" >>"$CH_OUT"
  (
    cd "$CH_DIR"
    exec setsid "$bin" --config-file="$CH_DIR/etc/config.xml"
  ) </dev/null >>"$CH_OUT" 2>&1 9>&- &
  echo $! >"$CH_PID"
}

# ---------------------------------------------------------------------------------------------
# start / stop / status
# ---------------------------------------------------------------------------------------------

# Before starting anything: a port held by a process that is not ours means a foreign server
# (another checkout's .state, a system service); refuse rather than half-start.
preflight_ports() {
  local busy=() p
  if ! live_pid "$KAFKA_PID" kafka.Kafka >/dev/null; then
    for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" $KAFKA_SASL_PORT $KAFKA_SSL_PORT; do port_open "$KAFKA_HOST" "$p" && busy+=("$p"); done
  fi
  if ! live_pid "$CH_PID" clickhouse-server >/dev/null; then
    for p in "$CH_TCP_PORT" "$CH_HTTP_PORT" $CH_TLS_PORT; do port_open "$CH_HOST" "$p" && busy+=("$p"); done
  fi
  ((${#busy[@]} == 0)) ||
    die "port(s) ${busy[*]} on 127.0.0.1 already in use by a process not started from $STATE; stop it first (see: ss -ltnp)"
}

# Remember log sizes so a failed start shows only what this start wrote.
declare -A LOG_MARK=()
mark_logs() {
  local f
  for f in "$KAFKA_LOG" "$KAFKA_OUT" "$CH_LOG" "$CH_ERR" "$CH_OUT"; do
    LOG_MARK[$f]=$(stat -c %s "$f" 2>/dev/null || echo 0)
  done
}

fail_start() {
  local msg=$1; shift
  printf 'services: error: %s; last log lines:\n' "$msg" >&2
  local f
  for f in "$@"; do
    [[ -s $f ]] || continue
    local mark=${LOG_MARK[$f]:-0} size
    size=$(stat -c %s "$f")
    ((size > mark)) || ((size < mark)) || continue  # nothing new from this start
    ((size > mark)) || mark=0                       # rotated meanwhile
    printf -- '--- %s\n' "$f" >&2
    tail -c "+$((mark + 1))" "$f" | tail -n 40 >&2
  done
  printf 'services: run "%s stop" to clean up, "rm -rf %s" to reset all state\n' "$0" "$STATE" >&2
  exit 1
}

wait_ready() {
  local deadline=$((SECONDS + START_TIMEOUT)) k=0 c=0
  while :; do
    ((k)) || { kafka_ready && k=1; } || true
    ((c)) || { ch_ready && c=1; } || true
    ((k && c)) && return 0
    if ((!k)) && ! live_pid "$KAFKA_PID" kafka.Kafka >/dev/null; then
      fail_start "kafka exited during startup" "$KAFKA_LOG" "$KAFKA_OUT"
    fi
    if ((!c)) && ! live_pid "$CH_PID" clickhouse-server >/dev/null; then
      fail_start "clickhouse exited during startup" "$CH_ERR" "$CH_LOG" "$CH_OUT"
    fi
    if ((SECONDS >= deadline)); then
      ((k)) || fail_start "kafka did not answer on $KAFKA_HOST:$KAFKA_PORT within $START_TIMEOUT s" "$KAFKA_LOG" "$KAFKA_OUT"
      fail_start "clickhouse did not answer on $CH_HOST:$CH_TCP_PORT within $START_TIMEOUT s" "$CH_ERR" "$CH_LOG" "$CH_OUT"
    fi
    sleep 0.5
  done
}

lock_state() {
  exec 9>"$STATE/.lock"
  flock -w 300 9 || die "another deploy/services.sh is running on $STATE (lock $STATE/.lock)"
}

do_start() {
  local t0; t0=$(now)
  lock_state
  if live_pid "$KAFKA_PID" kafka.Kafka >/dev/null && live_pid "$CH_PID" clickhouse-server >/dev/null &&
     kafka_ready && ch_ready; then
    log "already running (state $STATE)"
  else
    install_apt_packages
    if ! live_pid "$KAFKA_PID" kafka.Kafka >/dev/null; then
      check_java
      install_kafka_libs
    fi
    preflight_ports
    mark_logs
    start_clickhouse
    start_kafka
    wait_ready
  fi
  ensure_scram_users
  local chv
  chv=$(ch_client --query 'SELECT version()' 2>/dev/null) || chv=unknown
  printf 'kafka %s (KRaft) on %s:%s\n' "$(kafka_version)" "$KAFKA_HOST" "$KAFKA_PORT"
  if [[ -n $KAFKA_SASL_PORT ]] && port_open "$KAFKA_HOST" "$KAFKA_SASL_PORT"; then
    printf 'kafka SASL_SSL on %s:%s (SCRAM-SHA-512/256, PLAIN; user %s; CA %s)\n' "$KAFKA_HOST" "$KAFKA_SASL_PORT" "$SASL_USER" "$TLS_DIR/ca.pem"
  elif [[ -n $KAFKA_SASL_PORT ]]; then
    log "kafka was started without the SASL_SSL listener: it gets it at its next restart"
  fi
  if [[ -n $KAFKA_SSL_PORT ]] && port_open "$KAFKA_HOST" "$KAFKA_SSL_PORT"; then
    printf 'kafka SSL on %s:%s (TLS only, no SASL; CA %s)\n' "$KAFKA_HOST" "$KAFKA_SSL_PORT" "$TLS_DIR/ca.pem"
  elif [[ -n $KAFKA_SSL_PORT ]]; then
    log "kafka was started without the SSL listener: it gets it at its next restart"
  fi
  printf 'clickhouse %s on %s:%s (http %s)\n' "$chv" "$CH_HOST" "$CH_TCP_PORT" "$CH_HTTP_PORT"
  if [[ -n $CH_TLS_PORT ]] && port_open "$CH_HOST" "$CH_TLS_PORT"; then
    printf 'clickhouse TLS on %s:%s (CA %s)\n' "$CH_HOST" "$CH_TLS_PORT" "$TLS_DIR/ca.pem"
  elif [[ -n $CH_TLS_PORT ]]; then
    log "clickhouse was started without its TLS port: it gets it at its next restart"
  fi
  log "ready in $(elapsed "$t0") (state $STATE)"
}

stop_one() {
  local name=$1 pidfile=$2 pattern=$3 pid
  if ! pid=$(live_pid "$pidfile" "$pattern"); then
    [[ -f $pidfile ]] && rm -f "$pidfile"
    log "$name not running"
    return 0
  fi
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "$name did not exit within $STOP_TIMEOUT s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$pidfile"
}

do_stop() {
  lock_state
  local t0; t0=$(now)
  # Both at once: Kafka's controlled shutdown takes a few seconds, ClickHouse is quick.
  stop_one kafka "$KAFKA_PID" kafka.Kafka &
  local kpid=$!
  stop_one clickhouse "$CH_PID" clickhouse-server
  wait "$kpid"
  log "stopped in $(elapsed "$t0")"
}

do_status() {
  local up=0 pid
  if pid=$(live_pid "$KAFKA_PID" kafka.Kafka) && kafka_ready; then
    printf 'kafka:      running (pid %s) on %s:%s, log %s\n' "$pid" "$KAFKA_HOST" "$KAFKA_PORT" "$KAFKA_LOG"; ((up += 1))
  elif [[ -n ${pid:-} ]]; then
    printf 'kafka:      starting or unhealthy (pid %s, not answering on %s:%s)\n' "$pid" "$KAFKA_HOST" "$KAFKA_PORT"
  else
    printf 'kafka:      stopped\n'
  fi
  pid=
  if pid=$(live_pid "$CH_PID" clickhouse-server) && ch_ready; then
    printf 'clickhouse: running (pid %s) on %s:%s (http %s), log %s\n' "$pid" "$CH_HOST" "$CH_TCP_PORT" "$CH_HTTP_PORT" "$CH_LOG"; ((up += 1))
  elif [[ -n ${pid:-} ]]; then
    printf 'clickhouse: starting or unhealthy (pid %s, not answering on %s:%s)\n' "$pid" "$CH_HOST" "$CH_TCP_PORT"
  else
    printf 'clickhouse: stopped\n'
  fi
  ((up == 2)) || exit 3
}

# Operator shortcuts for the Kafka CLIs that ship in the fetched jars, e.g.
#   deploy/services.sh kafka-topics --list
#   deploy/services.sh kafka-consumer-groups --describe --group gapwatch-ingest
kafka_cli() {
  local cls=$1; shift
  [[ -f $KAFKA_LIBS/.pom.sha256 ]] || die "Kafka jars not installed yet: run $0 install"
  mkdir -p "$KAFKA_DIR"
  [[ -f $KAFKA_DIR/log4j2.xml ]] || cp "$SCRIPT_DIR/kafka/log4j2.xml" "$KAFKA_DIR/log4j2.xml"
  local args=("$@")
  [[ " $* " == *" --bootstrap-server "* ]] || args=(--bootstrap-server "$KAFKA_HOST:$KAFKA_PORT" "${args[@]}")
  kafka_jvm_args
  # Tools log to kafka/tools/kafka.log, not into the broker's kafka.log.
  KAFKA_JVM=("${KAFKA_JVM[@]/#-Dkafka.logs.dir=*/-Dkafka.logs.dir=$KAFKA_DIR/tools}")
  exec java "${KAFKA_JVM[@]}" "$cls" "${args[@]}"
}

case ${1:-start} in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  install) lock_state; do_install ;;
  kafka-topics) shift; kafka_cli org.apache.kafka.tools.TopicCommand "$@" ;;
  kafka-consumer-groups) shift; kafka_cli org.apache.kafka.tools.consumer.group.ConsumerGroupCommand "$@" ;;
  -h | --help | help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command '$1' (use start, stop, status or install)" ;;
esac
