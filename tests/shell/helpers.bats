#!/usr/bin/env bats
# The origin's shell functions, in bash and in zsh, under `set -euo pipefail`.
# Run by tests/shell/test_shell_helpers.py, which installs the helper files first and sets
# HOME, SESSIONWARD_HOME, SW (the launcher) and SHELLS.

CONFIG="$HOME/.claude/shell-config"

# in_shell SHELL SCRIPT: run SCRIPT in SHELL reading stdin (like a terminal: the shell itself is not
# a transient `-c` wrapper), with both helper files sourced, under strict mode.
in_shell() {
    local sh=$1
    shift
    printf 'set -euo pipefail\nsource %s/end-lock-helpers.sh\nsource %s/obsidian-session-helpers.sh\n%s\n' \
        "$CONFIG" "$CONFIG" "$*" | "$sh" -s
}

@test "sourcing defines functions and nothing else" {
    for sh in $SHELLS; do
        if [ "$sh" = bash ]; then
            snap='compgen -v | grep -v "^BASH\|^_$\|^FUNCNAME$\|^PIPESTATUS$\|^LINENO$\|^SECONDS$\|^RANDOM$\|^SRANDOM$\|^EPOCH" | sort; alias; shopt -p; set +o; trap -p'
        else
            snap='print -l ${(k)parameters} | grep -v "^_$\|^LINENO$\|^SECONDS$\|^RANDOM$\|^EPOCH\|^funcstack$\|^funcfiletrace$\|^funcsourcetrace$\|^functrace$\|^zsh_eval_context$\|^\?$\|^status$\|^pipestatus$\|^argv$" | sort; alias; setopt; trap'
        fi
        before=$("$sh" -c "$snap")
        after=$("$sh" -c "source $CONFIG/end-lock-helpers.sh; source $CONFIG/obsidian-session-helpers.sh; $snap")
        [ "$before" = "$after" ] || { echo "$sh: sourcing changed the shell:"; diff <(echo "$before") <(echo "$after"); return 1; }
        functions=$("$sh" -c "source $CONFIG/end-lock-helpers.sh; source $CONFIG/obsidian-session-helpers.sh; typeset -f | grep -c '^[a-z_]* ()'" || true)
        [ "$functions" -ge 9 ] || { echo "$sh: only $functions functions"; return 1; }
    done
}

@test "register, list, check, unregister: the shell owns its session" {
    mkdir -p "$BATS_TEST_TMPDIR/proj"
    for sh in $SHELLS; do
        run in_shell "$sh" "obsidian_session_register windsurf-project $BATS_TEST_TMPDIR/proj >/dev/null
obsidian_session_list | grep -c windsurf-project
\$SW whoami --shell-pid \$\$ --json | grep -o '\"pid\":[0-9]*' | head -1
echo \"shell \$\$\"
obsidian_session_check windsurf-project | tail -1
obsidian_session_unregister
obsidian_session_list"
        [ "$status" -eq 0 ] || { echo "$sh: $output"; return 1; }
        [ "${lines[0]}" = 1 ]
        [ "${lines[1]}" = "\"pid\":${lines[2]#shell }" ] || { echo "$sh: owner ${lines[1]} vs ${lines[2]}"; return 1; }
        [ "${lines[3]}" = "no other live session" ]
        [[ "${lines[4]}" == "unregistered session "* ]]
        [ "${lines[5]}" = "no live sessions" ]
    done
}

@test "the shell stays the owner when a function runs in a pipeline subshell" {
    mkdir -p "$BATS_TEST_TMPDIR/proj"
    for sh in $SHELLS; do
        run in_shell "$sh" "obsidian_session_register p $BATS_TEST_TMPDIR/proj | cat >/dev/null
echo \"\$\$\"
\$SW list --json | grep -o '\"pid\":[0-9]*' | head -1
obsidian_session_unregister >/dev/null"
        [ "$status" -eq 0 ] || { echo "$sh: $output"; return 1; }
        [ "${lines[1]}" = "\"pid\":${lines[0]}" ] || { echo "$sh: $output"; return 1; }
    done
}

@test "obsidian_session_check exits 1 naming the other session of the project" {
    mkdir -p "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/b"
    sleep 300 & keeper=$!
    "$SW" register windsurf-project "$BATS_TEST_TMPDIR/b" --pid "$keeper" >/dev/null
    for sh in $SHELLS; do
        run in_shell "$sh" "obsidian_session_register windsurf-project $BATS_TEST_TMPDIR/a >/dev/null
obsidian_session_check windsurf-project"
        [ "$status" -eq 1 ] || { echo "$sh: $status $output"; kill "$keeper"; return 1; }
        [ "${lines[1]}" = "WARNING: 1 session works on this project in another worktree" ]
        [[ "${lines[2]}" == *"pid $keeper"* ]]
    done
    kill "$keeper"
}

@test "obsidian_check_before_write: 0 when free, 1 naming the holder of the project" {
    mkdir -p "$BATS_TEST_TMPDIR/notes"
    for sh in $SHELLS; do
        run in_shell "$sh" "obsidian_check_before_write notes"
        [ "$status" -eq 0 ] || { echo "$sh: $status $output"; return 1; }
        [ "$output" = "lock end is free: safe to write" ]
    done
    sleep 300 & keeper=$!
    (cd "$BATS_TEST_TMPDIR/notes" && "$SW" lock acquire --pid "$keeper" --quiet)
    for sh in $SHELLS; do
        run in_shell "$sh" "obsidian_check_before_write notes"
        [ "$status" -eq 1 ] || { echo "$sh: $status $output"; kill "$keeper"; return 1; }
        [[ "${lines[0]}" == "not safe: lock end is held by pid $keeper (sleep), project notes"* ]]
        run in_shell "$sh" "obsidian_check_before_write other"
        [ "$status" -eq 0 ]
    done
    "$SW" lock release --force --quiet
    kill "$keeper"
}

@test "end_lock_acquire and end_lock_release: the shell holds the lock" {
    for sh in $SHELLS; do
        run in_shell "$sh" "end_lock_acquire --quiet
echo \"\$(cat \$SESSIONWARD_HOME/end.lock) \$\$\"
end_lock_acquire
end_lock_release
[ ! -e \$SESSIONWARD_HOME/end.lock ] && echo gone"
        [ "$status" -eq 0 ] || { echo "$sh: $output"; return 1; }
        set -- ${lines[0]}
        [ "$1" = "$2" ] || { echo "$sh: holder $1, shell $2"; return 1; }
        [ "${lines[1]}" = "lock end is already yours (pid $2)" ]
        [ "${lines[2]}" = "released lock end" ]
        [ "${lines[3]}" = "gone" ]
    done
}

@test "end_with_lock runs a function under the lock and returns its status" {
    for sh in $SHELLS; do
        run in_shell "$sh" "save() { echo \"holder \$(cat \$SESSIONWARD_HOME/end.lock)\"; return \"\$1\"; }
end_with_lock save 0
end_with_lock save 5 || echo \"status \$?\"
[ ! -e \$SESSIONWARD_HOME/end.lock ] && echo released"
        [ "$status" -eq 0 ] || { echo "$sh: $output"; return 1; }
        [[ "${lines[0]}" == "holder "[0-9]* ]]
        [[ "${lines[1]}" == "holder "[0-9]* ]]
        [ "${lines[2]}" = "status 5" ]
        [ "${lines[3]}" = "released" ]
    done
}

@test "end_with_lock keeps the caller's set -e inside a function, and still releases" {
    for sh in $SHELLS; do
        run in_shell "$sh" "steps() { echo one; false; echo NOT-REACHED; }
end_with_lock steps
echo NOT-REACHED-EITHER"
        [ "$status" -eq 1 ] || { echo "$sh: $status $output"; return 1; }
        [ "$output" = "one" ] || { echo "$sh: $output"; return 1; }
        [ ! -e "$SESSIONWARD_HOME/end.lock" ]
    done
}

@test "end_with_lock: two at once never overlap" {
    for sh in $SHELLS; do
        log="$BATS_TEST_TMPDIR/overlap-$sh"
        run in_shell "$sh" "work() { echo \"enter \$1\" >> $log; sleep 0.3; echo \"leave \$1\" >> $log; }
end_with_lock work a & end_with_lock work b & wait"
        [ "$status" -eq 0 ] || { echo "$sh: $output"; return 1; }
        run cat "$log"
        [[ "${lines[0]}" == "enter "? ]]
        [[ "${lines[1]}" == "leave "? ]]
        [ "${lines[0]#enter }" = "${lines[1]#leave }" ] || { echo "$sh: overlap: $output"; return 1; }
        [ "${lines[0]#enter }" != "${lines[2]#enter }" ]
    done
}

@test "end_lock_cleanup removes an orphaned lock and says why" {
    for sh in $SHELLS; do
        true & dead=$!
        wait "$dead"
        mkdir -p "$SESSIONWARD_HOME"
        echo "$dead" > "$SESSIONWARD_HOME/end.lock"
        run in_shell "$sh" "end_lock_cleanup"
        [ "$status" -eq 0 ] || { echo "$sh: $output"; return 1; }
        [[ "$output" == "removed orphaned lock end: pid $dead"*"process $dead is gone" ]] || { echo "$sh: $output"; return 1; }
        [ ! -e "$SESSIONWARD_HOME/end.lock" ]
    done
}

@test "without sessionward installed: one clear line, status 3" {
    broken="$BATS_TEST_TMPDIR/broken"
    mkdir -p "$broken"
    for f in end-lock-helpers.sh obsidian-session-helpers.sh; do
        sed "s|'/[^']*/sessionward'|'/nonexistent/sessionward'|g" "$CONFIG/$f" > "$broken/$f"
    done
    for sh in $SHELLS; do
        run env PATH=/usr/bin:/bin "$sh" -c "set -euo pipefail; source $broken/end-lock-helpers.sh; source $broken/obsidian-session-helpers.sh; obsidian_session_list"
        [ "$status" -eq 3 ] || { echo "$sh: $status $output"; return 1; }
        [ "$output" = "obsidian_session_list: sessionward is not installed (install it, then run 'sessionward install --seed-paths')" ]
        run env PATH=/usr/bin:/bin "$sh" -c "source $broken/end-lock-helpers.sh; end_with_lock true"
        [ "$status" -eq 3 ] || { echo "$sh: end_with_lock: $status $output"; return 1; }
        [[ "$output" == "end_with_lock: sessionward is not installed"* ]]
    done
}

@test "kill -9 of the PID in end.lock stops the work under end_with_lock; no overlap" {
    for sh in $SHELLS; do
        log="$BATS_TEST_TMPDIR/k9-$sh"
        run in_shell "$sh" "end_with_lock sh -c 'sleep 1.5; echo A-END >> $log' &
while [ ! -e \$SESSIONWARD_HOME/end.lock ]; do sleep 0.05; done
sleep 0.3
kill -9 \$(cat \$SESSIONWARD_HOME/end.lock)
end_with_lock sh -c 'echo B >> $log'
wait || true
sleep 1.5"
        [ "$status" -eq 0 ] || { echo "$sh: $output"; return 1; }
        run cat "$log"
        [ "$output" = "B" ] || { echo "$sh: the killed work went on: $output"; return 1; }
        [ ! -e "$SESSIONWARD_HOME/end.lock" ]
    done
}

@test "obsidian_check_before_write knows the holder by its registered project name" {
    mkdir -p "$BATS_TEST_TMPDIR/src/windsurf"
    sleep 300 & keeper=$!
    "$SW" register windsurf-project "$BATS_TEST_TMPDIR/src/windsurf" --pid "$keeper" >/dev/null
    "$SW" lock acquire --pid "$keeper" --quiet
    for sh in $SHELLS; do
        run in_shell "$sh" "obsidian_check_before_write windsurf-project"
        [ "$status" -eq 1 ] || { echo "$sh: $status $output"; kill "$keeper"; return 1; }
        [[ "${lines[0]}" == "not safe: lock end is held by pid $keeper (sleep), project windsurf-project"* ]]
    done
    "$SW" lock release --pid "$keeper" --quiet
    kill "$keeper"
}
