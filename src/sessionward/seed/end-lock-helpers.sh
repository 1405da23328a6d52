# sessionward: managed file. 'sessionward install --seed-paths' wrote it and may overwrite it.
# The /end lock, as the origin's guide uses it (bash and zsh; safe under set -euo pipefail):
#   source ~/.claude/shell-config/end-lock-helpers.sh
#   end_lock_acquire     # take the end lock for this shell's session (waits up to 30 s)
#   end_lock_release     # release it
#   end_lock_cleanup     # remove orphaned end locks (holder dead)
#   end_with_lock CMD... # take the lock, run CMD, release, return CMD's status
# Every function hands its work to sessionward; none keeps state of its own.

__sessionward_end_lock() {
    local caller=$1
    shift
    if [ -x '@SESSIONWARD@' ]; then
        '@SESSIONWARD@' "$@"
    elif command -v sessionward >/dev/null 2>&1; then
        command sessionward "$@"
    else
        echo "$caller: sessionward is not installed (install it, then run 'sessionward install --seed-paths')" >&2
        return 3
    fi
}

end_lock_acquire() {
    __sessionward_end_lock end_lock_acquire lock acquire end --shell-pid "$$" "$@"
}

end_lock_release() {
    __sessionward_end_lock end_lock_release lock release end --shell-pid "$$" "$@"
}

end_lock_cleanup() {
    __sessionward_end_lock end_lock_cleanup lock cleanup end "$@"
}

# The lock is held by a subshell that lives exactly as long as CMD: it survives Ctrl-C (a
# no-op handler; CMD still gets the signal) to release, and if it is killed outright the lock
# is an orphan that the next acquire takes over at once. CMD may be a shell function: it runs
# in an inner subshell under the caller's own `set -e`, as if called directly (a status
# capture like `CMD || s=$?` would switch errexit off inside it).
end_with_lock() {
    if [ "$#" -eq 0 ]; then
        echo "end_with_lock: usage: end_with_lock COMMAND [ARGS...]" >&2
        return 2
    fi
    (
        __sessionward_end_lock end_with_lock lock acquire end --caller --shell-pid "$$" --purpose "end_with_lock $1" --quiet || exit "$?"
        case $- in *e*) errexit=1 ;; *) errexit=0 ;; esac
        set +e
        trap ':' INT TERM HUP
        ( trap - INT TERM HUP; [ "$errexit" = 0 ] || set -e; "$@" )
        rc=$?
        __sessionward_end_lock end_with_lock lock release end --caller --quiet || true
        exit "$rc"
    )
}
