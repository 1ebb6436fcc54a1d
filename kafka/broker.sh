#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft, broker+controller in one JVM) on 127.0.0.1,
# for tests and development only. Jars come from Maven Central through kafka/pom.xml.
#
#   kafka/broker.sh start DIR     resolve jars if needed, format DIR/data once, start, wait
#   kafka/broker.sh stop DIR      SIGTERM, wait, then SIGKILL
#   kafka/broker.sh restart DIR   stop, then start again on the same ports and data
#   kafka/broker.sh status DIR    print the bootstrap address if running (exit 1 if not)
#   kafka/broker.sh resolve       only resolve the jars into kafka/target/lib
#
# DIR gets server.properties, log4j2.properties, data/, broker.log, broker.pid, ports and,
# once the broker is up, bootstrap ("127.0.0.1:PORT").
#
# Environment (all optional):
#   KAFKA_START_TIMEOUT   seconds to wait for the broker to come up (default 60)
#   KAFKA_STOP_TIMEOUT    seconds to wait after SIGTERM before SIGKILL (default 30)
#   KAFKA_RESOLVE_TIMEOUT seconds allowed for Maven to resolve the jars (default 600)
#   KAFKA_HEAP_OPTS       JVM heap flags (default "-Xms128m -Xmx512m")
#   KAFKA_JVM_OPTS        extra JVM flags
#   KAFKA_WATCH_PID       if set, the broker is stopped once this process is gone
#                         (so a killed test run does not leave a broker behind)
#
# Secured listeners (all optional: without KAFKA_SECURITY the broker has only PLAINTEXT, and
# DIR gets exactly what it got before). The PLAINTEXT listener always stays, for admin work
# and inter-broker traffic; it has no authentication.
#   KAFKA_SECURITY        extra listeners on 127.0.0.1, comma-separated, any of:
#                           sasl_plaintext  SASL without TLS
#                           ssl             TLS that requires a client certificate (mutual TLS)
#                           sasl_ssl        SASL over TLS (no client certificate asked for)
#                         Each gets a free port, kept in DIR/secure_ports and reused by
#                         restart. Once the broker is up, their addresses are written to
#                         DIR/bootstrap_sasl_plaintext, DIR/bootstrap_ssl, DIR/bootstrap_sasl_ssl
#                         (before DIR/bootstrap, which stays the PLAINTEXT address).
#   KAFKA_SASL_USERS      the users the SASL listeners accept, comma-separated entries
#                         [MECHANISM/]user:password (default gatewatch:gatewatch-secret).
#                         An entry is good for PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, or only
#                         for the MECHANISM it starts with (so a test can tell which one a
#                         client used). Letters, digits and . _ @ + - only.
#                         PLAIN takes them from DIR/server.properties at every start; SCRAM
#                         credentials are stored in the cluster metadata when DIR/data is
#                         formatted (the first start), so a later change reaches PLAIN only.
#   KAFKA_SSL_CA          PEM file: the CA that client certificates must chain to
#   KAFKA_SSL_CERT        PEM file: the broker's certificate chain (name IP:127.0.0.1 as a
#                         subject alternative name, or clients that check it refuse it)
#   KAFKA_SSL_KEY         PEM file: the broker's private key, unencrypted PKCS#8
#                         ("BEGIN PRIVATE KEY")
#                         The three are needed by ssl and sasl_ssl; their contents are
#                         copied into DIR/server.properties (throwaway test keys only).
# These apply to one start: pass the same ones to restart.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TARGET="$HERE/target"
LIB="$TARGET/lib"
RESOLVED_MARK="$LIB/.resolved"
PYTHON="${PYTHON:-python3}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
RESOLVE_TIMEOUT="${KAFKA_RESOLVE_TIMEOUT:-600}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
STARTED_MESSAGE="Kafka Server started"
KNOWN_SECURE_LISTENERS=(sasl_plaintext ssl sasl_ssl)
SASL_MECHANISMS=(PLAIN SCRAM-SHA-256 SCRAM-SHA-512)
SECURE_LISTENERS=()       # from KAFKA_SECURITY, in the order of KNOWN_SECURE_LISTENERS
declare -A SECURE_PORT=() # secured listener -> port
SASL_USERS=()             # "[MECHANISM/]user:password" from KAFKA_SASL_USERS

die() {
    echo "broker.sh: $*" >&2
    exit 1
}

usage() {
    echo "usage: $0 start|stop|restart|status DIR  |  $0 resolve" >&2
    exit 2
}

# --- jars -------------------------------------------------------------------------------------

resolve_jars() {
    if [[ -f "$RESOLVED_MARK" ]]; then
        return 0
    fi
    command -v mvn >/dev/null || die "Maven (mvn) is needed once to resolve the Kafka jars"
    mkdir -p "$TARGET"
    # One resolver at a time; copy into a scratch folder and move it into place when complete,
    # so an interrupted run never leaves a half-filled lib/ that looks resolved.
    exec 8>"$TARGET/.resolve.lock"
    flock -w "$RESOLVE_TIMEOUT" 8 || die "timed out waiting for another jar resolution"
    if [[ ! -f "$RESOLVED_MARK" ]]; then
        local partial="$TARGET/lib.partial"
        rm -rf "$partial"
        echo "broker.sh: resolving Kafka jars with Maven into $LIB" >&2
        if ! timeout "$RESOLVE_TIMEOUT" mvn -B -ntp -f "$HERE/pom.xml" \
            dependency:copy-dependencies -Dkafka.lib.dir="$partial" >"$TARGET/resolve.log" 2>&1; then
            tail -n 40 "$TARGET/resolve.log" >&2
            die "Maven could not resolve the Kafka jars (log: $TARGET/resolve.log)"
        fi
        compgen -G "$partial/kafka_2.13-*.jar" >/dev/null || die "no kafka_2.13 jar was resolved"
        date -u +%Y-%m-%dT%H:%M:%SZ >"$partial/.resolved"
        rm -rf "$LIB"
        mv "$partial" "$LIB"
    fi
    exec 8>&-
}

# --- process helpers --------------------------------------------------------------------------

# True while PID is a live (non-zombie) process running this DIR's broker.
broker_alive() {
    local pid="$1" dir="$2" state
    [[ -n "$pid" && -d "/proc/$pid" ]] || return 1
    state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
    [[ -n "$state" && "$state" != "Z" ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/server.properties"
}

read_pid() {
    local dir="$1"
    [[ -f "$dir/broker.pid" ]] && cat "$dir/broker.pid" || true
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

log_tail() {
    local dir="$1"
    if [[ -f "$dir/broker.log" ]]; then
        echo "---- last lines of $dir/broker.log ----" >&2
        tail -n 40 "$dir/broker.log" >&2
        echo "----" >&2
    fi
}

# --- configuration ----------------------------------------------------------------------------

# COUNT (default 2) distinct free ports, on one line.
pick_ports() {
    "$PYTHON" -c '
import socket, sys
socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()
' "${1:-2}"
}

random_cluster_id() {
    # A Kafka Uuid: 16 random bytes, URL-safe base64 without padding, not starting with "-".
    "$PYTHON" -c '
import base64, os
while True:
    cid = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not cid.startswith("-"):
        print(cid)
        break
'
}

write_config() {
    local dir="$1" port="$2" cport="$3" name upper
    local listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport"
    local protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    for name in "${SECURE_LISTENERS[@]}"; do
        upper="${name^^}"
        listeners+=",$upper://127.0.0.1:${SECURE_PORT[$name]}"
        protocols+=",$upper:$upper"
    done
    cat >"$dir/server.properties" <<EOF
# Written by kafka/broker.sh: single-node KRaft (combined mode), tests and development only.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=$listeners
advertised.listeners=$listeners
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocols
log.dirs=$dir/data
num.partitions=6
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=6
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
    if ((${#SECURE_LISTENERS[@]})); then
        write_security_config >>"$dir/server.properties"
    fi
    cat >"$dir/log4j2.properties" <<'EOF'
status = warn
# Kafka logs its own shutdown; log4j2's shutdown hook would silence it half-way.
shutdownHook = disable
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
# The full broker configuration is dumped ten times at start-up; server.properties is beside.
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
EOF
}

# --- secured listeners (KAFKA_SECURITY) -------------------------------------------------------

has_listener() {
    local wanted="$1" name
    for name in "${SECURE_LISTENERS[@]}"; do
        [[ "$name" == "$wanted" ]] && return 0
    done
    return 1
}

# Fill SECURE_LISTENERS and SASL_USERS from the environment and check what they need.
parse_security() {
    local item known found entry
    local -a items=()
    IFS=',' read -ra items <<<"${KAFKA_SECURITY:-}"
    for item in "${items[@]}"; do
        item="${item//[[:space:]]/}"
        item="${item,,}"
        [[ -n "$item" ]] || continue
        found=""
        for known in "${KNOWN_SECURE_LISTENERS[@]}"; do
            [[ "$item" == "$known" ]] && found=1
        done
        [[ -n "$found" ]] || die "KAFKA_SECURITY: unknown listener '$item' (use ${KNOWN_SECURE_LISTENERS[*]})"
    done
    # Canonical order, no duplicates.
    for known in "${KNOWN_SECURE_LISTENERS[@]}"; do
        for item in "${items[@]}"; do
            item="${item//[[:space:]]/}"
            if [[ "${item,,}" == "$known" ]]; then
                SECURE_LISTENERS+=("$known")
                break
            fi
        done
    done

    if has_listener sasl_plaintext || has_listener sasl_ssl; then
        IFS=',' read -ra items <<<"${KAFKA_SASL_USERS:-gatewatch:gatewatch-secret}"
        for entry in "${items[@]}"; do
            [[ "$entry" =~ ^((PLAIN|SCRAM-SHA-256|SCRAM-SHA-512)/)?[A-Za-z0-9._@+-]+:[A-Za-z0-9._@+-]+$ ]] \
                || die "KAFKA_SASL_USERS: each entry is [MECHANISM/]user:password, with letters, digits and . _ @ + - only"
            SASL_USERS+=("$entry")
        done
        ((${#SASL_USERS[@]})) || die "KAFKA_SASL_USERS is empty"
    fi
    if has_listener ssl || has_listener sasl_ssl; then
        local var
        for var in KAFKA_SSL_CA KAFKA_SSL_CERT KAFKA_SSL_KEY; do
            [[ -n "${!var:-}" ]] || die "$var is needed by the ssl and sasl_ssl listeners"
            [[ -r "${!var}" ]] || die "$var: cannot read ${!var}"
        done
        grep -q -- "-----BEGIN PRIVATE KEY-----" "$KAFKA_SSL_KEY" \
            || die "KAFKA_SSL_KEY must be an unencrypted PKCS#8 PEM key (BEGIN PRIVATE KEY)"
    fi
}

# Give each secured listener a port: the one in DIR/secure_ports if it has one, else a free
# one (distinct from the ports in use by DIR); then write DIR/secure_ports back.
assign_secure_ports() {
    local dir="$1" port="$2" cport="$3" name p
    local -a fresh=()
    if [[ -f "$dir/secure_ports" ]]; then
        while read -r name p; do
            [[ -n "$name" && -n "$p" ]] && SECURE_PORT[$name]="$p"
        done <"$dir/secure_ports"
    fi
    for name in "${SECURE_LISTENERS[@]}"; do
        [[ -n "${SECURE_PORT[$name]:-}" ]] && continue
        while :; do
            read -r p < <(pick_ports 1)
            [[ "$p" != "$port" && "$p" != "$cport" && " ${SECURE_PORT[*]} " != *" $p "* ]] && break
        done
        SECURE_PORT[$name]="$p"
        fresh+=("$name")
    done
    for name in "${SECURE_LISTENERS[@]}"; do
        # A port of our own that another process took since the last start.
        if [[ " ${fresh[*]} " != *" $name "* ]] && port_open "${SECURE_PORT[$name]}"; then
            die "port ${SECURE_PORT[$name]} ($name) of $dir is taken by another process"
        fi
    done
    for name in "${!SECURE_PORT[@]}"; do
        echo "$name ${SECURE_PORT[$name]}"
    done | sort >"$dir/secure_ports"
}

# A PEM file as one properties value ("\n" escapes keep the line breaks).
pem_value() {
    awk '{ printf "%s\\n", $0 }' "$1"
}

# Whether a KAFKA_SASL_USERS entry is good for MECHANISM; its user; its password.
entry_for() { [[ "$1" != */* || "${1%%/*}" == "$2" ]]; }
entry_user() { local e="${1#*/}"; echo "${e%%:*}"; }
entry_password() { echo "${1#*:}"; }

# The server.properties lines for the secured listeners.
write_security_config() {
    local name mechanism entry jaas
    echo "# Secured listeners (KAFKA_SECURITY=${KAFKA_SECURITY:-}): tests and development only."
    if ((${#SASL_USERS[@]})); then
        echo "sasl.enabled.mechanisms=$(IFS=,; echo "${SASL_MECHANISMS[*]}")"
        jaas="org.apache.kafka.common.security.plain.PlainLoginModule required"
        for entry in "${SASL_USERS[@]}"; do
            if entry_for "$entry" PLAIN; then
                jaas+=" user_$(entry_user "$entry")=\"$(entry_password "$entry")\""
            fi
        done
        jaas+=";"
        for name in sasl_plaintext sasl_ssl; do
            has_listener "$name" || continue
            for mechanism in "${SASL_MECHANISMS[@]}"; do
                if [[ "$mechanism" == PLAIN ]]; then
                    echo "listener.name.$name.plain.sasl.jaas.config=$jaas"
                else
                    echo "listener.name.$name.${mechanism,,}.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
                fi
            done
        done
    fi
    if has_listener ssl || has_listener sasl_ssl; then
        echo "ssl.keystore.type=PEM"
        echo "ssl.keystore.certificate.chain=$(pem_value "$KAFKA_SSL_CERT")"
        echo "ssl.keystore.key=$(pem_value "$KAFKA_SSL_KEY")"
        echo "ssl.truststore.type=PEM"
        echo "ssl.truststore.certificates=$(pem_value "$KAFKA_SSL_CA")"
        has_listener ssl && echo "listener.name.ssl.ssl.client.auth=required"
        has_listener sasl_ssl && echo "listener.name.sasl_ssl.ssl.client.auth=none"
    fi
    return 0
}

# --add-scram options for kafka-storage format: every SASL user, with both SCRAM mechanisms.
scram_args() {
    local entry mechanism
    for entry in "${SASL_USERS[@]}"; do
        for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
            entry_for "$entry" "$mechanism" || continue
            printf '%s\0' --add-scram \
                "$mechanism=[name=$(entry_user "$entry"),password=$(entry_password "$entry")]"
        done
    done
}

secure_ports_open() {
    local name
    for name in "${SECURE_LISTENERS[@]}"; do
        port_open "${SECURE_PORT[$name]}" || return 1
    done
    return 0
}

# --- commands ---------------------------------------------------------------------------------

cmd_start() {
    local dir="$1" port cport pid deadline log_offset name
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    pid="$(read_pid "$dir")"
    if broker_alive "$pid" "$dir"; then
        die "a broker for $dir is already running (pid $pid)"
    fi
    rm -f "$dir/broker.pid" "$dir/bootstrap" "$dir"/bootstrap_*
    parse_security
    command -v java >/dev/null || die "java (17+) is needed to run the broker"
    resolve_jars

    if [[ -f "$dir/data/meta.properties" && -f "$dir/ports" ]]; then
        # Formatted before: same ports, since the controller's address is part of its metadata.
        read -r port cport <"$dir/ports"
        port_open "$port" && die "port $port of $dir is taken by another process"
        port_open "$cport" && die "port $cport of $dir is taken by another process"
        if ((${#SECURE_LISTENERS[@]})); then
            assign_secure_ports "$dir" "$port" "$cport"
        fi
        write_config "$dir" "$port" "$cport"
    else
        rm -rf "$dir/data"
        rm -f "$dir/secure_ports"
        read -r port cport < <(pick_ports)
        echo "$port $cport" >"$dir/ports"
        if ((${#SECURE_LISTENERS[@]})); then
            assign_secure_ports "$dir" "$port" "$cport"
        fi
        write_config "$dir" "$port" "$cport"
        # SCRAM credentials live in the cluster metadata, so they are written by the format.
        local -a scram=()
        if ((${#SASL_USERS[@]})); then
            mapfile -d '' scram < <(scram_args)
        fi
        # A one-node dynamic quorum (KIP-853): this node is the only controller voter.
        java -Xmx256m -XX:TieredStopAtLevel=1 \
            -Dlog4j2.configurationFile="$dir/log4j2.properties" \
            -cp "$LIB/*" kafka.tools.StorageTool format --standalone \
            --config "$dir/server.properties" --cluster-id "$(random_cluster_id)" \
            "${scram[@]}" >>"$dir/broker.log" 2>&1 \
            || { log_tail "$dir"; die "formatting $dir/data failed"; }
    fi

    # Look for the start-up message only in what this run appends to the log.
    log_offset=0
    [[ -f "$dir/broker.log" ]] && log_offset="$(stat -c %s "$dir/broker.log")"
    # shellcheck disable=SC2086  # HEAP_OPTS and KAFKA_JVM_OPTS are word lists on purpose
    nohup java $HEAP_OPTS ${KAFKA_JVM_OPTS:-} \
        -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$dir/log4j2.properties" \
        -cp "$LIB/*" kafka.Kafka "$dir/server.properties" \
        >>"$dir/broker.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/broker.pid"

    if [[ -n "${KAFKA_WATCH_PID:-}" ]]; then
        local watched="$KAFKA_WATCH_PID"
        nohup bash -c '
            while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
            kill -TERM "$2" 2>/dev/null || true
        ' broker-watch "$watched" "$pid" >/dev/null 2>&1 </dev/null &
        echo "$!" >"$dir/watch.pid"
    fi

    deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! broker_alive "$pid" "$dir"; then
            log_tail "$dir"
            rm -f "$dir/broker.pid"
            die "the broker exited during start-up"
        fi
        if port_open "$port" && secure_ports_open \
            && tail -c "+$((log_offset + 1))" "$dir/broker.log" | grep -qF "$STARTED_MESSAGE"; then
            for name in "${SECURE_LISTENERS[@]}"; do
                echo "127.0.0.1:${SECURE_PORT[$name]}" >"$dir/bootstrap_$name"
            done
            echo "127.0.0.1:$port" >"$dir/bootstrap"
            echo "127.0.0.1:$port"
            return 0
        fi
        sleep 0.2
    done
    log_tail "$dir"
    stop_pid "$pid" "$dir"
    die "the broker did not start within ${START_TIMEOUT}s"
}

stop_pid() {
    local pid="$1" dir="$2" deadline
    if broker_alive "$pid" "$dir"; then
        kill -TERM "$pid" 2>/dev/null || true
        deadline=$((SECONDS + STOP_TIMEOUT))
        while broker_alive "$pid" "$dir" && ((SECONDS < deadline)); do
            sleep 0.2
        done
        if broker_alive "$pid" "$dir"; then
            echo "broker.sh: broker $pid ignored SIGTERM for ${STOP_TIMEOUT}s; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            deadline=$((SECONDS + 10))
            while broker_alive "$pid" "$dir" && ((SECONDS < deadline)); do
                sleep 0.2
            done
            broker_alive "$pid" "$dir" && die "broker $pid survived SIGKILL"
        fi
    fi
    if [[ -f "$dir/watch.pid" ]]; then
        local watcher
        watcher="$(cat "$dir/watch.pid")"
        if tr '\0' ' ' <"/proc/$watcher/cmdline" 2>/dev/null | grep -qF "broker-watch"; then
            kill -TERM "$watcher" 2>/dev/null || true
        fi
        rm -f "$dir/watch.pid"
    fi
    rm -f "$dir/broker.pid" "$dir/bootstrap" "$dir"/bootstrap_*
}

cmd_stop() {
    local dir="$1"
    [[ -d "$dir" ]] || return 0
    dir="$(cd "$dir" && pwd)"
    stop_pid "$(read_pid "$dir")" "$dir"
}

cmd_status() {
    local dir="$1"
    [[ -d "$dir" ]] || die "no broker directory $dir"
    dir="$(cd "$dir" && pwd)"
    if broker_alive "$(read_pid "$dir")" "$dir" && [[ -f "$dir/bootstrap" ]]; then
        cat "$dir/bootstrap"
    else
        echo "not running" >&2
        return 1
    fi
}

case "${1:-}" in
    start) [[ $# -eq 2 ]] || usage; cmd_start "$2" ;;
    stop) [[ $# -eq 2 ]] || usage; cmd_stop "$2" ;;
    restart) [[ $# -eq 2 ]] || usage; cmd_stop "$2"; cmd_start "$2" ;;
    status) [[ $# -eq 2 ]] || usage; cmd_status "$2" ;;
    resolve) [[ $# -eq 1 ]] || usage; resolve_jars ;;
    *) usage ;;
esac
