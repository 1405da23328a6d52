# sessionward: managed file. 'sessionward install' (or 'install --seed-paths') wrote it and may overwrite it.
# Session tracking, as the origin's guide uses it (bash and zsh; safe under set -euo pipefail):
#   source ~/.claude/shell-config/obsidian-session-helpers.sh
#   obsidian_session_register <project> <cwd>
#   obsidian_session_unregister
#   obsidian_session_check <project>        # 1 when another session shares the project
#   obsidian_session_list
#   obsidian_check_before_write <project>   # 0 when writing the project's notes is safe now
# The owner of the session is this shell (its PID is passed), or Claude Code inside it.
# Every function hands its work to sessionward; none keeps state of its own.

__sessionward_obsidian() {
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

obsidian_session_register() {
    __sessionward_obsidian obsidian_session_register register --shell-pid "$$" "$@"
}

obsidian_session_unregister() {
    __sessionward_obsidian obsidian_session_unregister unregister --shell-pid "$$" "$@"
}

obsidian_session_check() {
    __sessionward_obsidian obsidian_session_check check --shell-pid "$$" "$@"
}

obsidian_session_list() {
    __sessionward_obsidian obsidian_session_list list "$@"
}

obsidian_check_before_write() {
    __sessionward_obsidian obsidian_check_before_write lock check end --shell-pid "$$" --project "${1-}"
}
