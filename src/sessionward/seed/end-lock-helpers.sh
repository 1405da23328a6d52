# sessionward: managed file. 'sessionward install' (or 'install --seed-paths') wrote it and may overwrite it.
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

# The lock is held by the subshell that runs CMD (CMD itself, once the shell execs it), so it
# lives exactly as long as the work: `kill -9 $(cat ~/.claude/end.lock)` stops the work too,
# and killing this wrapper does not free the lock under a running CMD. When CMD ends, for any
# reason, its lock is an orphan that `lock cleanup end` removes at once. The outer subshell
# survives Ctrl-C (a no-op handler; CMD still gets the signal) to do that. CMD may be a shell
# function; it runs under the caller's own `set -e`, as if called directly.
end_with_lock() {
    if [ "$#" -eq 0 ]; then
        echo "end_with_lock: usage: end_with_lock COMMAND [ARGS...]" >&2
        return 2
    fi
    (
        case $- in *e*) errexit=1 ;; *) errexit=0 ;; esac
        set +e
        trap ':' INT TERM HUP
        (
            trap - INT TERM HUP
            __sessionward_end_lock end_with_lock lock acquire end --caller --shell-pid "$$" --purpose "end_with_lock $1" --quiet || exit "$?"
            [ "$errexit" = 0 ] || set -e
            "$@"
        )
        rc=$?
        __sessionward_end_lock end_with_lock lock cleanup end >/dev/null || true
        exit "$rc"
    )
}
