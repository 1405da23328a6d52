# sessionward's status line for Claude Code: the fast path. What install writes into
# settings.json ("statusLine", with "refreshInterval": 3):
#     sh /path/to/sessionward/install/status_line.sh /path/to/bin/sessionward
# Claude Code runs it every few seconds in every session, with its statusLine JSON on stdin.
# When nothing the row shows has changed since sessionward rendered it, it prints the row
# cached for this session and costs a shell start: it runs no program, only builtins (read,
# test, parameter expansion, printf). Else it hands the JSON to `sessionward status-line`,
# which renders the row and caches it again. The cache's lines and what each one guards are
# described in sessionward/hooks/status_line.py; the stamp in sessionward/status_stamp.py.
# POSIX sh (dash, bash --posix, busybox ash); the stamp and the values are compared by
# content, never by mtime.

launcher=$1
IFS=
json= line=
while read -r line; do json="$json$line "; done
json=$json$line

render() {
	exec "$launcher" status-line <<EOF
$json
EOF
}

# field NAME: the string value of the first "NAME": in the JSON, in $value; its first
# occurrence is the top-level one in what Claude Code sends (compact JSON, "session_id" its
# first key, "current_dir" only in "workspace": captured from 2.1.331 and 2.1.112 in
# tests/hooks/payloads/<version>/statusline/). Spaces and line breaks between tokens are fine.
# A value with an escape in it (a backslash) is never cached.
field() {
	value=${json#*\"$1\":}
	[ "$value" != "$json" ] || render
	value=${value# }
	case $value in \"*) value=${value#\"} ;; *) render ;; esac
	value=${value%%\"*}
	case $value in '' | *\\*) render ;; esac
}

field session_id
sid=$value
# A "session_id" inside an object before the top-level one (a subagent's, say) would key the
# cache on another session's row: only one taken from the outermost object is trusted. (A
# wrong "current_dir" cannot mislead: it is compared with the one the row was made for.)
case ${json%%\"session_id\":*} in *{*{*) render ;; esac
case $sid in *[!A-Za-z0-9_-]*) render ;; esac
field current_dir
dir=$value

# The state directory, as sessionward.paths.state_dir() finds it.
state=${SESSIONWARD_HOME:-${CLAUDE_CONFIG_DIR:-$HOME/.claude}}
case $state in /*) ;; *) render ;; esac
status=$state/sessionward/status
cache=$status/$sid.row
[ -f "$cache" ] || render

stamp=
[ -f "$status/stamp" ] && read -r stamp <"$status/stamp"
cached_config= line=
{
	read -r schema
	read -r c_stamp
	read -r c_dir
	read -r c_head_path
	read -r c_head
	read -r c_lock_path
	read -r c_lock
	read -r c_boot
	read -r c_until
	read -r c_config_path
	read -r row
	while read -r line; do cached_config="$cached_config$line
"; done
	cached_config=$cached_config$line
} <"$cache"
[ "$schema" = sessionward-status/1 ] && [ "$c_stamp" = "$stamp" ] && [ "$c_dir" = "$dir" ] || render

if [ -n "$c_head_path" ]; then
	head=
	[ -f "$c_head_path" ] && read -r head <"$c_head_path"
	[ "$head" = "$c_head" ] || render
fi
lock=
[ -f "$c_lock_path" ] && read -r lock <"$c_lock_path"
[ "$lock" = "$c_lock" ] || render
boot=
read -r boot </proc/sys/kernel/random/boot_id
[ "$boot" = "$c_boot" ] || render
if [ "$c_until" != 0 ]; then
	read -r up </proc/uptime
	up=${up%%.*}
	[ "$up" -lt "$c_until" ] || render
fi
config= line=
if [ -f "$c_config_path" ]; then
	while read -r line; do config="$config$line
"; done <"$c_config_path"
	config=$config$line
fi
[ "$config" = "$cached_config" ] || render

printf '%s\n' "$row"
