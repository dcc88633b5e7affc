# jkctl's kernel wrapper, run by the kernel pod as
# `sh -c <this> jkctl-kernel CONNECTION_FILE KEEPER_SOURCE ARGV...`.
#
# It runs the kernelspec's own argv ("$@") and adds the three things a pod
# cannot get from a stock image:
#
# - A lease. The daemon keeps changing the annotation jkctl.io/lease-renewed;
#   the downward API shows annotations live in $JKCTL_PODINFO/annotations. If
#   the value has not changed for jkctl.io/lease-seconds, measured on this
#   pod's own clock (so laptop/node clock skew does not matter), nobody is
#   looking after this kernel any more: stop it and end the pod, so an
#   abandoned laptop never leaves a GPU busy.
# - In-place restarts. A kernel that exits 0 was asked to (a restart request,
#   or `exit()` in a cell): start it again under the same pod, ports and key,
#   as Jupyter's restarter would. Any other exit ends the container with the
#   kernel's status, so Kubernetes and the daemon see the crash.
# - Output that survives a tunnel drop. If the image has a Python with pyzmq,
#   the output keeper (KEEPER_SOURCE, jkctl/kube/output_keeper.py) serves the
#   kernel's iopub port, keeping and numbering what the kernel publishes so a
#   reconnecting daemon misses nothing; the kernel gets a rewritten connection
#   file that points its iopub at the keeper. The keeper outlives in-place
#   restarts and ends with the wrapper. If it cannot start, the kernel runs
#   exactly as it would without it; KERNEL_OUTPUT_KEEPER=0 (in the kernelspec's
#   env, or as a launch variable) turns it off.
#
# POSIX sh only: it must run in any image that can run a kernel.

podinfo="${JKCTL_PODINFO:-/var/run/jkctl/podinfo}"
interval="${JKCTL_LEASE_CHECK_SECONDS:-10}"
connection_file="$1"
keeper_source="$2"
shift 2
kernel=""
watchdog=""
keeper=""

annotation() {
    # The downward API writes one `key="value"` line per annotation.
    sed -n "s|^$1=\"\\(.*\\)\"\$|\\1|p" "$podinfo/annotations" 2>/dev/null
}

stop() {
    [ -n "$watchdog" ] && kill "$watchdog" 2>/dev/null
    if [ -n "$kernel" ]; then
        kill -TERM "$kernel" 2>/dev/null
        wait "$kernel" 2>/dev/null
    fi
    stop_keeper
    exit 143
}

stop_keeper() {
    if [ -n "$keeper" ]; then
        kill -TERM "$keeper" 2>/dev/null
        wait "$keeper" 2>/dev/null
        keeper=""
        rm -f "$rewritten" 2>/dev/null
    fi
}

start_keeper() {
    # Starts the keeper and waits (a few seconds at most) for the connection file
    # it rewrites, $rewritten; fails, leaving no keeper, if anything is amiss.
    [ "${KERNEL_OUTPUT_KEEPER:-1}" != 0 ] || return 1
    [ -r "$connection_file" ] || return 1
    # The kernel's own Python first (a conda env's may be the one with pyzmq).
    py=""
    case "${1##*/}" in
        python|python3|python3.*) command -v "$1" >/dev/null 2>&1 && py="$1" ;;
    esac
    for candidate in python3 python; do
        if [ -z "$py" ] && command -v "$candidate" >/dev/null 2>&1; then
            py="$candidate"
        fi
    done
    [ -n "$py" ] || return 1
    rewritten="${TMPDIR:-/tmp}/jkctl-connection-$$.json"
    rm -f "$rewritten" 2>/dev/null
    "$py" -c "$keeper_source" "$connection_file" "$rewritten" &
    keeper=$!
    deadline=$(($(date +%s) + 10))
    while [ ! -s "$rewritten" ]; do
        if ! kill -0 "$keeper" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
            stop_keeper
            return 1
        fi
        sleep 0.02 2>/dev/null || sleep 1
    done
}

trap stop TERM INT HUP

lapsed_marker="${TMPDIR:-/tmp}/jkctl-lease-lapsed.$$"

watch_lease() {
    # $1: the kernel's pid. Runs in the background until the lease lapses, or
    # until the kernel is gone (so it never outlives the wrapper).
    seen=""
    since=$(date +%s)
    while kill -0 "$1" 2>/dev/null && sleep "$interval"; do
        token=$(annotation jkctl.io/lease-renewed)
        now=$(date +%s)
        if [ "$token" != "$seen" ]; then
            seen="$token"
            since="$now"
        fi
        seconds=$(annotation jkctl.io/lease-seconds)
        case "$seconds" in
            ''|*[!0-9]*) continue ;;
        esac
        if [ $((now - since)) -ge "$seconds" ]; then
            echo "jkctl: no daemon renewed this kernel's lease for ${seconds}s; stopping the kernel" >&2
            : > "$lapsed_marker" 2>/dev/null
            kill -TERM "$1" 2>/dev/null
            return 0
        fi
    done
}

if start_keeper "$@"; then
    # The kernel's argv with the connection file replaced by the rewritten one.
    count=$#
    replaced=""
    for arg; do
        if [ "$arg" = "$connection_file" ]; then
            arg="$rewritten"
            replaced=yes
        fi
        set -- "$@" "$arg"
    done
    shift "$count"
    if [ -z "$replaced" ]; then
        # The argv names the file in some other way: the kernel would bind the
        # iopub port the keeper serves. Without the keeper, then.
        stop_keeper
    fi
fi

quick_exits=0
while :; do
    started=$(date +%s)
    "$@" &
    kernel=$!
    watch_lease "$kernel" &
    watchdog=$!
    wait "$kernel"
    status=$?
    kill "$watchdog" 2>/dev/null
    wait "$watchdog" 2>/dev/null
    kernel=""
    if [ -e "$lapsed_marker" ]; then
        rm -f "$lapsed_marker"
        stop_keeper
        exit 0
    fi
    if [ "$status" -ne 0 ]; then
        stop_keeper
        exit "$status"
    fi
    if [ $(($(date +%s) - started)) -lt 3 ]; then
        quick_exits=$((quick_exits + 1))
    else
        quick_exits=0
    fi
    if [ "$quick_exits" -ge 5 ]; then
        echo "jkctl: the kernel keeps exiting at once; giving up" >&2
        stop_keeper
        exit 1
    fi
    echo "jkctl: the kernel exited cleanly; starting it again" >&2
done
