"""The completion scripts of bash, zsh and fish, each written from a completion.Spec.

Each script holds the table as data (words, options, what completes each value) and one
function that finds, from the words before the cursor, the command, the option whose value
is wanted or the position of the argument; the values of a dynamic kind come from
`sessionward completion --values KIND` when TAB is pressed. What each kind means in each
shell: file -> files, dir -> directories, command -> command names (then files), a tuple ->
those words.
"""

from sessionward import __version__

_HEADER = ("# {shell} completion for sessionward {version}, made by `sessionward completion {shell}` from its\n"
           "# command table: print it again after an upgrade. Enable: see `sessionward completion --help`.\n")


def _quote(text: str) -> str:
    """A single-quoted word for bash and zsh."""
    return "'" + text.replace("'", "'\\''") + "'"


def _bash_kind(kind) -> str:
    if kind is None:
        return "-"
    if isinstance(kind, tuple):
        return "words:" + ",".join(kind)
    return kind


def bash(spec) -> str:
    cases = []
    for name, opts, args, rest in spec.commands:
        values = " ".join(f"{o}:{_bash_kind(k)}" for o, metavar, k, _ in opts if metavar)
        many = "1" if args and args[-1][2] else ""
        cases.append(
            f"        {_quote(name)}) opts={_quote(' '.join(o[0] for o in opts))}; values={_quote(' ' + values + ' ')}; "
            f"args={_quote(' '.join(_bash_kind(a[1]) for a in args))}; many={many}; rest={rest or ''} ;;"
        )
    groups = [f"        {g}) subs={_quote(' '.join(s for s, _ in subs))} ;;" for g, subs in spec.groups.items()]
    top = " ".join(w for w, _ in spec.top) + " --help --version"
    return _HEADER.format(shell="bash", version=__version__) + _BASH.format(
        top=_quote(top), group_words=_quote(" ".join(spec.groups)), groups="\n".join(groups), cases="\n".join(cases))


_BASH = r"""
_sessionward_reply() {{  # $1: what completes the word (a kind, or words:A,B), $2: the word
    local IFS=$'\n'
    case $1 in
        file) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$2")) ;;
        dir) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$2")) ;;
        command) COMPREPLY=($(compgen -c -- "$2")) ;;
        words:*) local words=${{1#words:}}; COMPREPLY=($(compgen -W "${{words//,/$'\n'}}" -- "$2")) ;;
        lock|session|pid|project)
            COMPREPLY=($(compgen -W "$(command sessionward completion --values "$1" 2>/dev/null)" -- "$2")) ;;
    esac
}}

_sessionward_spec() {{  # $1: a command -> opts, values (" --opt:kind ", valued options), args, many, rest
    case $1 in
{cases}
        *) return 1 ;;
    esac
}}

_sessionward() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} cmd=${{COMP_WORDS[1]}} i=2 subs opts values args many rest
    COMPREPLY=()
    if (( COMP_CWORD == 1 )); then
        COMPREPLY=($(compgen -W {top} -- "$cur"))
        return 0
    fi
    case " "{group_words}" " in
        *" $cmd "*)
            case $cmd in
{groups}
            esac
            if (( COMP_CWORD == 2 )); then
                COMPREPLY=($(compgen -W "$subs" -- "$cur"))
                return 0
            fi
            cmd="$cmd ${{COMP_WORDS[2]}}"
            i=3 ;;
    esac
    _sessionward_spec "$cmd" || return 0
    local word n=0 dash=-1 pending=
    for (( ; i < COMP_CWORD; i++ )); do
        word=${{COMP_WORDS[i]}}
        if [[ $word == "=" ]]; then pending=1; continue; fi  # --opt=VALUE: bash splits the word at "="
        if [[ -n $pending ]]; then pending=; continue; fi
        if (( dash >= 0 )); then dash=$((dash + 1)); continue; fi
        case $word in
            --) dash=0 ;;
            -*) [[ $values == *" $word:"* ]] && pending=1 ;;
            *) n=$((n + 1)) ;;
        esac
    done
    local opt=
    if [[ $cur == "=" ]]; then
        opt=${{COMP_WORDS[COMP_CWORD-1]}}; cur=
    elif [[ $COMP_CWORD -gt 2 && ${{COMP_WORDS[COMP_CWORD-1]}} == "=" ]]; then
        opt=${{COMP_WORDS[COMP_CWORD-2]}}
    elif [[ -n $pending ]]; then
        opt=${{COMP_WORDS[COMP_CWORD-1]}}
    fi
    if [[ -n $opt ]]; then
        [[ $values == *" $opt:"* ]] || return 0
        local kind=${{values#* "$opt":}}
        _sessionward_reply "${{kind%% *}}" "$cur"
        return 0
    fi
    if (( dash >= 0 )); then
        if [[ -n $rest ]]; then
            if (( dash == 0 )); then _sessionward_reply "$rest" "$cur"; else _sessionward_reply file "$cur"; fi
            return 0
        fi
        n=$((n + dash))
    elif [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return 0
    fi
    local -a kinds=($args)
    local kind=${{kinds[n]}}
    if [[ -z $kind && -n $many && ${{#kinds[@]}} -gt 0 ]]; then kind=${{kinds[${{#kinds[@]}}-1]}}; fi
    [[ -n $kind ]] && _sessionward_reply "$kind" "$cur"
    return 0
}}

complete -F _sessionward sessionward
"""


def _zsh_escape(text: str) -> str:
    """Text inside an _arguments [description] or after a _describe colon."""
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]").replace(":", "\\:")


def _zsh_action(kind) -> str:
    if kind is None:
        return " "
    if isinstance(kind, tuple):
        return "(" + " ".join(kind) + ")"
    return {"file": "_files", "dir": "_files -/", "command": "_command_names -e"}.get(kind, f"_sessionward_values {kind}")


def zsh(spec) -> str:
    top = "\n".join(f"        {_quote(w + ':' + _zsh_escape(s))}" for w, s in spec.top)
    groups = []
    for group, subs in spec.groups.items():
        entries = " ".join(_quote(s + ":" + _zsh_escape(summary)) for s, summary in subs)
        groups.append(f"                    ({group}) subs=({entries}) ;;")
    cases = []
    for name, opts, args, rest in spec.commands:
        specs = []
        for option, metavar, kind, text in opts:
            if metavar:
                specs.append(f"{option}=[{_zsh_escape(text)}]:{_zsh_escape(metavar)}:{_zsh_action(kind)}")
            else:
                specs.append(f"{option}[{_zsh_escape(text)}]")
        specs.append("-h[show this help]")
        for index, (arg, kind, many, required) in enumerate(args, 1):
            optional = "" if required else ":"
            position = "*" if many else str(index)
            specs.append(f"{position}:{optional}{arg}:{_zsh_action(kind)}")
        if rest:
            specs.append("*::command:_sessionward_rest")
        body = " \\\n            ".join(_quote(s) for s in specs)
        cases.append(f"        ({_quote(name)})\n            _arguments -s -S : \\\n            {body} ;;")
    return _HEADER.format(shell="zsh", version=__version__).replace("# zsh", "#compdef sessionward\n# zsh", 1) + _ZSH.format(
        top=top, group_words="|".join(spec.groups) or "-", groups="\n".join(groups), cases="\n".join(cases))


_ZSH = r"""
_sessionward_values() {{  # compadd's options (from _arguments), then lock, session, pid or project
    local -a values
    values=(${{(f)"$(command sessionward completion --values ${{@[-1]}} 2>/dev/null)"}})
    compadd "${{@[1,-2]}}" -a values
}}

_sessionward_rest() {{  # after `--`: a command line of its own
    local dash=${{words[(i)--]}}
    (( dash < CURRENT )) || return 1
    shift $dash words
    (( CURRENT -= dash ))
    _normal
}}

_sessionward() {{
    local -a top subs
    top=(
{top}
        '--help:show the commands'
        '--version:show the version'
    )
    if (( CURRENT == 2 )); then
        _describe -t commands 'sessionward command' top
        return
    fi
    local cmd=$words[2]
    case $cmd in
        ({group_words})
            if (( CURRENT == 3 )); then
                case $cmd in
{groups}
                esac
                _describe -t subcommands "sessionward $cmd subcommand" subs
                return
            fi
            cmd="$cmd $words[3]"
            shift 2 words
            (( CURRENT -= 2 )) ;;
        (*)
            shift words
            (( CURRENT -= 1 )) ;;
    esac
    case $cmd in
{cases}
    esac
}}

if [ "$funcstack[1]" = "_sessionward" ]; then
    _sessionward "$@"
else
    compdef _sessionward sessionward
fi
"""


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_values(kind) -> str:
    """complete's arguments for a value of `kind`."""
    if isinstance(kind, tuple):
        return "-a " + _fish_quote(" ".join(kind))
    return {
        "file": "-F",
        "dir": "-a '(__fish_complete_directories (commandline -ct))'",
        "command": "-a '(__fish_complete_command)'",
    }.get(kind, f"-a '(command sessionward completion --values {kind} 2>/dev/null)'")


def fish(spec) -> str:
    lines = [_HEADER.format(shell="fish", version=__version__), _FISH_FUNCTIONS]
    valued = []
    for name, opts, _args, _rest in spec.commands:
        names = [o[0] for o in opts if o[1]]
        valued.append(f"        case {_fish_quote(name)}\n            printf '%s\\n' {' '.join(names)}" if names else
                      f"        case {_fish_quote(name)}\n            true")
    lines.append("function __sessionward_valued  # the options of command $argv[1] that take a value\n"
                 "    switch $argv[1]\n" + "\n".join(valued) + "\n    end\nend\n")
    lines.append(f"function __sessionward_groups\n    printf '%s\\n' {' '.join(spec.groups)}\nend\n")
    lines.append("complete -c sessionward -e\ncomplete -c sessionward -f")
    at = "complete -c sessionward -n"
    lines.append(f"{at} '__sessionward_at top' -l help -d 'show the commands'")
    lines.append(f"{at} '__sessionward_at top' -l version -d 'show the version'")
    for word, summary in spec.top:
        lines.append(f"{at} '__sessionward_at top' -a {_fish_quote(word)} -d {_fish_quote(summary)}")
    for group, subs in spec.groups.items():
        for sub, summary in subs:
            lines.append(f"{at} '__sessionward_at group {group}' -a {_fish_quote(sub)} -d {_fish_quote(summary)}")
    for name, opts, args, rest in spec.commands:
        where = "'__sessionward_at options " + name.replace(" ", "\\ ") + "'"
        for option, metavar, kind, text in opts:
            if metavar:
                # -x: a value, no files (-F of the file kind brings them back)
                value = " -r -F" if kind == "file" else f" -x {_fish_values(kind)}" if kind is not None else " -x"
            else:
                value = ""
            lines.append(f"{at} {where} -l {option[2:]}{value} -d {_fish_quote(text)}")
        lines.append(f"{at} {where} -s h -d 'show this help'")
        for index, (_arg, kind, many, _required) in enumerate(args, 1):
            if kind is None:
                continue
            position = f"{index}+" if many else str(index)
            cond = "'__sessionward_at arg " + name.replace(" ", "\\ ") + f" {position}'"
            lines.append(f"{at} {cond} {_fish_values(kind)}")
        if rest:
            cond = "'__sessionward_at rest " + name.replace(" ", "\\ ")
            lines.append(f"{at} {cond} 0' {_fish_values(rest)}")
            lines.append(f"{at} {cond} 1+' -F")
    return "\n".join(lines) + "\n"


_FISH_FUNCTIONS = r"""
function __sessionward_at  # top | group G | options CMD | arg CMD N[+] | rest CMD N[+]: is that what is wanted here?
    set -l words (commandline -opc)
    set -e words[1]
    set -l groups (__sessionward_groups)
    if test (count $words) -eq 0
        test "$argv[1]" = top
        return
    end
    set -l cmd $words[1]
    set -l rest $words[2..-1]
    if contains -- $words[1] $groups
        if test (count $words) -eq 1
            test "$argv[1]" = group -a "$argv[2]" = "$words[1]"
            return
        end
        set cmd "$words[1] $words[2]"
        set rest $words[3..-1]
    end
    test "$argv[1]" != top -a "$argv[1]" != group -a "$argv[2]" = "$cmd"; or return 1
    set -l valued (__sessionward_valued $cmd)
    set -l n 0
    set -l dash -1
    set -l pending 0
    for word in $rest
        if test $pending -eq 1
            set pending 0
        else if test $dash -ge 0
            set dash (math $dash + 1)
        else if test "$word" = --
            set dash 0
        else if string match -q -- '-*' $word
            contains -- $word $valued; and set pending 1
        else
            set n (math $n + 1)
        end
    end
    switch $argv[1]
        case options  # and their values: fish offers those of the option before the cursor
            test $dash -lt 0
        case '*'
            test $pending -eq 0; or return 1  # an option's value, not an argument
    end
    switch $argv[1]
        case arg rest
            set -l count $n
            if test $argv[1] = rest
                test $dash -ge 0; or return 1
                set count $dash
            else if test $dash -ge 0
                set count (math $n + $dash)
            end
            set -l want (string trim -r -c + -- $argv[3])
            if string match -q -- '*+' $argv[3]
                test $count -ge (math $want - (test $argv[1] = arg; and echo 1; or echo 0))
            else
                test $count -eq (math $want - (test $argv[1] = arg; and echo 1; or echo 0))
            end
    end
end
"""
