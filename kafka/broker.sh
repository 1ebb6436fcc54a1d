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

pick_ports() {
    "$PYTHON" -c '
import socket
socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()
'
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
    local dir="$1" port="$2" cport="$3"
    cat >"$dir/server.properties" <<EOF
# Written by kafka/broker.sh: single-node KRaft (combined mode), tests and development only.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
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

# --- commands ---------------------------------------------------------------------------------

cmd_start() {
    local dir="$1" port cport pid deadline log_offset
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    pid="$(read_pid "$dir")"
    if broker_alive "$pid" "$dir"; then
        die "a broker for $dir is already running (pid $pid)"
    fi
    rm -f "$dir/broker.pid" "$dir/bootstrap"
    command -v java >/dev/null || die "java (17+) is needed to run the broker"
    resolve_jars

    if [[ -f "$dir/data/meta.properties" && -f "$dir/ports" ]]; then
        # Formatted before: same ports, since the controller's address is part of its metadata.
        read -r port cport <"$dir/ports"
        port_open "$port" && die "port $port of $dir is taken by another process"
        port_open "$cport" && die "port $cport of $dir is taken by another process"
        write_config "$dir" "$port" "$cport"
    else
        rm -rf "$dir/data"
        read -r port cport < <(pick_ports)
        echo "$port $cport" >"$dir/ports"
        write_config "$dir" "$port" "$cport"
        # A one-node dynamic quorum (KIP-853): this node is the only controller voter.
        java -Xmx256m -XX:TieredStopAtLevel=1 \
            -Dlog4j2.configurationFile="$dir/log4j2.properties" \
            -cp "$LIB/*" kafka.tools.StorageTool format --standalone \
            --config "$dir/server.properties" --cluster-id "$(random_cluster_id)" \
            >>"$dir/broker.log" 2>&1 \
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
        if port_open "$port" \
            && tail -c "+$((log_offset + 1))" "$dir/broker.log" | grep -qF "$STARTED_MESSAGE"; then
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
    rm -f "$dir/broker.pid" "$dir/bootstrap"
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
