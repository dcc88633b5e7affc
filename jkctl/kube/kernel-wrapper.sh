# jkctl's kernel wrapper, run by the kernel pod as `sh -c <this> jkctl-kernel ARGV...`.
#
# It runs the kernelspec's own argv ("$@") and adds the two things a pod cannot
# get from a stock image:
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
#
# POSIX sh only: it must run in any image that can run a kernel.

podinfo="${JKCTL_PODINFO:-/var/run/jkctl/podinfo}"
interval="${JKCTL_LEASE_CHECK_SECONDS:-10}"
kernel=""
watchdog=""

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
    exit 143
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
        exit 0
    fi
    [ "$status" -eq 0 ] || exit "$status"
    if [ $(($(date +%s) - started)) -lt 3 ]; then
        quick_exits=$((quick_exits + 1))
    else
        quick_exits=0
    fi
    if [ "$quick_exits" -ge 5 ]; then
        echo "jkctl: the kernel keeps exiting at once; giving up" >&2
        exit 1
    fi
    echo "jkctl: the kernel exited cleanly; starting it again" >&2
done
