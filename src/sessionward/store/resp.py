"""A minimal RESP2 client for the shared store: one socket, one command at a time.

Purpose: hooks run on the hot path, and a Redis client library costs many times a bare
interpreter start to import; this module speaks the protocol over the C `_socket` module
alone (the `socket` module imports `enum` and `selectors`), so that a hook can reach the
shared store within its budget. `ssl` (and `socket`, which it wraps) is imported only for a
`rediss://` URL.

What it does not do: pipelining, pub/sub, cluster redirects, RESP3, retries, reconnection.
Every operation has one short deadline (CONNECT_TIMEOUT_S, REPLY_TIMEOUT_S, a fraction of a
second); a server that is down, unreachable, paused or too slow raises StoreUnavailable,
one line naming the URL without its password. It is never retried here: the caller decides
(a hook fails open, the CLI exits 3).

URLs (parse_store_url):
    redis://[user:password@]host[:port][/db]        TCP (port 6379, db 0 by default)
    rediss://[user:password@]host[:port][/db]       TLS, the system's CA store
    unix://[user:password@]/path/to/socket[?db=N]   a Unix socket
A password alone is written `:password@`. Percent-escapes (%40 for @) are decoded.

Calling sequence:
    target = parse_store_url(url)
    conn = connect(target)                     # AUTH and SELECT done, or StoreUnavailable
    conn.call("SET", "k", "v", "PX", 500)      # -> the reply: str, int, bytes, None, list
    script = Script(LUA_SOURCE)
    conn.run_script(script, keys, args)        # EVAL: the server keeps it compiled
    conn.close()
A reply the server sends as an error raises StoreCommandFailed (exit 3), except inside an
array, where it is returned as a ReplyError value. It is a bug to share one connection
between threads or across fork().
"""

import _socket
import os
import time

from sessionward.errors import ConfigError, StoreCommandFailed, StoreUnavailable

CONNECT_TIMEOUT_S = 0.25  # loopback or a private network: a healthy server answers in well under this
REPLY_TIMEOUT_S = 0.25  # for the whole reply of one command, not per recv()
DEFAULT_PORT = 6379
KEY_NAMESPACE = "sessionward"
_READ_SIZE = 65536


class Target:
    """Where the shared store lives, parsed from its URL; `display` never holds the password."""

    __slots__ = ("scheme", "host", "port", "path", "username", "password", "db", "display")

    def __init__(self, scheme, host="", port=DEFAULT_PORT, path="", username="", password="", db=0):
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
        self.username = username
        self.password = password
        self.db = db
        who = f"{username}@" if username else ""
        if scheme == "unix":
            self.display = f"unix://{who}{path}" + (f"?db={db}" if db else "")
        else:
            host_part = f"[{host}]" if ":" in host else host
            self.display = f"{scheme}://{who}{host_part}:{port}/{db}"


def _unquote(text: str) -> str:
    """Percent-decoding without urllib.parse (it imports more than this module may)."""
    if "%" not in text:
        return text
    out = bytearray()
    i = 0
    raw = text.encode()
    while i < len(raw):
        if raw[i] == 0x25 and i + 2 < len(raw):
            try:
                out.append(int(raw[i + 1:i + 3], 16))
                i += 3
                continue
            except ValueError:
                pass
        out.append(raw[i])
        i += 1
    return out.decode("utf-8", "replace")


def _db_number(text: str, url_shown: str) -> int:
    if not text:
        return 0
    if not text.isdigit():
        raise ConfigError(f"store URL {url_shown}: database {text!r} is not a number")
    return int(text)


def parse_store_url(url: str) -> Target:
    """A Target from a redis://, rediss:// or unix:// URL, or ConfigError naming what is wrong
    (store.shared.connection() tells it as the setting's fault: exit 3); the message never
    repeats the password."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"store URL must start with redis://, rediss:// or unix:// (got {url.split('@')[-1]!r})")
    userinfo, at, location = rest.rpartition("@")
    if not at:
        userinfo, location = "", rest
    username, colon, password = userinfo.partition(":")
    username, password = _unquote(username), _unquote(password) if colon else ""
    if not colon and username:  # "user@" alone: Redis 6 ACLs need a password; treat it as one (as redis-py does)
        username, password = "", username
    shown = f"{scheme}://{location}"
    # A password may hold spaces, and so may a socket's path; a host, port or database may not
    if any(not c.isprintable() or (c.isspace() and scheme != "unix") for c in location):
        raise ConfigError(f"store URL {shown!r}: its host, port or database holds a space or a control character")
    location, _, query = location.partition("?")
    params = dict(p.partition("=")[::2] for p in query.split("&") if p)
    unknown = sorted(set(params) - {"db"})
    if unknown:
        raise ConfigError(f"store URL {shown}: unknown parameter {unknown[0]!r} (only db=N)")
    if scheme == "unix":
        if not location.startswith("/"):
            raise ConfigError(f"store URL {shown}: a unix:// URL names an absolute socket path (unix:///run/redis.sock)")
        return Target("unix", path=_unquote(location), username=username, password=password,
                      db=_db_number(params.get("db", ""), shown))
    hostport, _, db_text = location.partition("/")
    if hostport.startswith("["):  # [IPv6]:port
        host, closed, port_text = hostport[1:].partition("]")
        if not closed:
            raise ConfigError(f"store URL {shown}: its host opens [ and does not close it ([::1]:6379)")
        port_text = port_text[1:] if port_text.startswith(":") else port_text
    else:
        host, _, port_text = hostport.partition(":")
    if not host:
        raise ConfigError(f"store URL {shown}: no host")
    if "[" in host or "]" in host:
        raise ConfigError(f"store URL {shown}: an IPv6 host goes in brackets before the port ([::1]:6379)")
    if db_text and "db" in params:
        raise ConfigError(f"store URL {shown}: names its database twice (/{db_text} and ?db={params['db']})")
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise ConfigError(f"store URL {shown}: port {port_text!r} is not a port number")
    db = _db_number(db_text or params.get("db", ""), shown)
    return Target(scheme, host=host, port=int(port_text) if port_text else DEFAULT_PORT,
                  username=username, password=password, db=db)


def key_prefix(user: str) -> str:
    """The prefix of every key one user's sessions write, so that people can share a server.
    The braces make the user a Redis Cluster hash tag: all of one user's keys, which one
    script may touch together, live on one slot. Glob characters are refused too: the
    re-seed walks the prefix with KEYS."""
    if not user or any(c in user for c in "{}:*?[]\\ \t\r\n"):
        raise ConfigError(f"store key prefix: unusable user name {user!r}")
    return f"{KEY_NAMESPACE}:{{{user}}}:"


class ReplyError:
    """An error reply inside an array (a script's table may hold one); str() is its text."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"ReplyError({self.text!r})"


class Script:
    """A Lua script, sent whole with each call (EVAL), not by its SHA-1 (EVALSHA): the server
    keeps each script it has seen compiled, under the SHA-1 it computes itself, so a call
    costs it a hash of a kilobyte or two; naming it by SHA-1 would cost each hook the import
    of a hash module (about 0.1 ms, docs/BENCHMARKS.md) and a second call on a server that
    restarted since."""

    __slots__ = ("source",)

    def __init__(self, source: str) -> None:
        self.source = source


def _encode(args) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, int) and not isinstance(arg, bool):
            data = b"%d" % arg
        else:
            raise TypeError(f"a Redis argument is bytes, str or int, not {type(arg).__name__}")
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class Connection:
    """One connection to the shared store; connect() makes it ready (AUTH, SELECT)."""

    def __init__(self, target: Target, sock, reply_timeout_s: float = REPLY_TIMEOUT_S,
                 setting: str = "SESSIONWARD_STORE") -> None:
        self.target = target
        self.setting = setting  # what named the store, for StoreUnavailable's advice
        self.reply_timeout_s = reply_timeout_s
        self._sock = sock
        self._buf = b""
        self._pos = 0
        self._deadline = 0.0

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    @property
    def closed(self) -> bool:
        """Closed, by close() or after a failure (a reply half read leaves it unusable)."""
        return self._sock is None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def usable(self) -> bool:
        """Not closed after a failure, and not closed by the server (or a network hop) while
        idle: one peek, no byte sent. A connection held across a partition or a server restart
        is found dead here, before a command is sent on it, not after."""
        if self._sock is None:
            return False
        try:
            self._sock.settimeout(0.0)  # non-blocking (each command sets its own deadline again)
            return self._sock.recv(1, _socket.MSG_PEEK) != b""
        except BlockingIOError:
            return True  # nothing to read: open and quiet, as it should be
        except ValueError:
            return True  # TLS sockets take no flags: found out by the command, then
        except OSError:
            return False

    def _unavailable(self, why: str, auth: bool = False) -> StoreUnavailable:
        self.close()  # a reply half read leaves the stream unusable
        return StoreUnavailable(self.target.display, why, self.setting, auth)

    def _refused(self, reply: "ReplyError", what: str) -> Exception:
        """The error for an error reply: a server that wants a password the URL does not
        give is unavailable to us (as a wrong one is), not a command that failed."""
        if reply.text.startswith("NOAUTH"):
            return self._unavailable("it asks for a password, and the URL gives none", auth=True)
        return StoreCommandFailed(self.target.display, what, reply.text)

    def call(self, *args):
        """Send one command, return its reply; StoreCommandFailed for an error reply."""
        reply = self._roundtrip(args)
        if isinstance(reply, ReplyError):
            raise self._refused(reply, str(args[0]))
        return reply

    def run_script(self, script: Script, keys, args):
        """Run `script` on `keys` and `args` (EVAL); its reply."""
        keys = list(keys)
        reply = self._roundtrip(["EVAL", script.source, len(keys), *keys, *args])
        if isinstance(reply, ReplyError):
            raise self._refused(reply, "a sessionward script")
        return reply

    def _roundtrip(self, args):
        if self._sock is None:
            raise StoreUnavailable(self.target.display, "the connection was closed after an earlier failure",
                                   self.setting)
        self._deadline = time.monotonic() + self.reply_timeout_s
        try:
            self._sock.settimeout(self.reply_timeout_s)
            self._sock.sendall(_encode(args))
            return self._read_reply()
        except TimeoutError:
            raise self._unavailable(f"no reply within {self.reply_timeout_s:g} s") from None
        except OSError as error:
            raise self._unavailable(error.strerror or str(error)) from None

    def _fill(self) -> None:
        left = self._deadline - time.monotonic()
        # Past the deadline, what has arrived still counts: on a busy machine this process may
        # have been off the CPU for the whole deadline while the server answered in time.
        self._sock.settimeout(max(left, 0.0))
        try:
            chunk = self._sock.recv(_READ_SIZE)
        except BlockingIOError:  # timeout 0 and nothing there
            raise TimeoutError from None
        if not chunk:
            raise OSError(0, "the server closed the connection")
        self._buf = self._buf[self._pos:] + chunk
        self._pos = 0

    def _line(self) -> bytes:
        while True:
            end = self._buf.find(b"\r\n", self._pos)
            if end >= 0:
                line = self._buf[self._pos:end]
                self._pos = end + 2
                return line
            self._fill()

    def _exact(self, n: int) -> bytes:
        while len(self._buf) - self._pos < n + 2:
            self._fill()
        data = self._buf[self._pos:self._pos + n]
        self._pos += n + 2
        return data

    def _read_reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return ReplyError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else self._read_array(n)
        raise OSError(0, f"not a RESP2 reply: {line[:40]!r}")

    def _read_array(self, n: int) -> list:
        """An array's n elements. A bulk string or an integer already whole in the buffer (the
        elements of the registry's reads) is taken in place; anything else as _read_reply does."""
        items: list = []
        for _ in range(n):
            buf, pos = self._buf, self._pos
            kind = buf[pos:pos + 1]
            end = buf.find(b"\r\n", pos) if kind in (b"$", b":") else -1
            if end >= 0:
                number = int(buf[pos + 1:end])
                if kind == b":":
                    items.append(number)
                    self._pos = end + 2
                    continue
                start = end + 2
                if number < 0:
                    items.append(None)
                    self._pos = start
                    continue
                if start + number + 2 <= len(buf):
                    items.append(buf[start:start + number])
                    self._pos = start + number + 2
                    continue
            items.append(self._read_reply())
        return items


def _open_socket(target: Target, timeout_s: float):
    if target.scheme == "unix":
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        address = target.path
    else:
        sock = _socket.socket(_socket.AF_INET6 if ":" in target.host else _socket.AF_INET, _socket.SOCK_STREAM)
        address = (target.host, target.port)
    try:
        sock.settimeout(timeout_s)
        sock.connect(address)
        if target.scheme != "unix":
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
    except BaseException:
        sock.close()
        raise
    return sock


def _start_tls(sock, target: Target, timeout_s: float):
    """The TLS session over a connected socket (rediss://); closed on failure."""
    import socket  # ssl wraps socket.socket objects only: paid for TLS alone
    import ssl

    plain = socket.socket(fileno=sock.detach())
    try:
        plain.settimeout(timeout_s)
        return ssl.create_default_context().wrap_socket(plain, server_hostname=target.host)
    except BaseException:
        plain.close()
        raise


def _unix_socket_problem(path: str, error: OSError) -> tuple[str, str] | None:
    """(why, the fix) when a unix:// URL names no socket a server could be listening on, so
    that "start it" would mislead; None otherwise (a socket file nobody listens on: down)."""
    import stat

    if isinstance(error, FileNotFoundError):
        return f"no socket file {path}", ""  # not "No such file or directory": which file? (start it, or check...)
    if isinstance(error, NotADirectoryError):
        parent = path
        while (parent := os.path.dirname(parent)) not in ("", "/"):
            try:
                if stat.S_ISSOCK(os.stat(parent).st_mode):
                    return (f"{parent} is the socket, and a path cannot go on after it",
                            "give a database as unix:///path/to/socket?db=N in {where}, not after the path")
            except OSError:
                continue
        return f"a part of {path} is not a directory", "check the socket's path in {where}"
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if not stat.S_ISSOCK(mode):
        return f"{path} is not a socket", "check the socket's path in {where} (redis-server's unixsocket)"
    return None


def connect(target: Target, connect_timeout_s: float = CONNECT_TIMEOUT_S,
            reply_timeout_s: float = REPLY_TIMEOUT_S, setting: str = "SESSIONWARD_STORE") -> Connection:
    """A ready Connection (authenticated, on its database), or StoreUnavailable: one line
    naming the URL without its password and why (refused, timed out, bad password...), and
    what to check: `setting` named the store (SESSIONWARD_STORE, or sessionward.toml's path)."""
    try:
        sock = _open_socket(target, connect_timeout_s)
    except TimeoutError:
        raise StoreUnavailable(target.display, f"no connection within {connect_timeout_s:g} s", setting) from None
    except OSError as error:  # ssl.SSLError is an OSError too
        why = error.strerror or str(error) or type(error).__name__
        if target.scheme == "unix":
            unix_why = _unix_socket_problem(target.path, error)
            if unix_why is not None:
                raise StoreUnavailable(target.display, unix_why[0], setting, fix=unix_why[1]) from None
        raise StoreUnavailable(target.display, why, setting) from None
    if target.scheme == "rediss":
        try:
            sock = _start_tls(sock, target, connect_timeout_s)
        except TimeoutError:  # it took the connection and said nothing: a server without TLS waits for a command
            raise StoreUnavailable(target.display, f"no TLS handshake within {connect_timeout_s:g} s",
                                   setting, fix="if the server speaks no TLS, give a redis:// URL in {where}") from None
        except OSError as error:  # ssl.SSLError: a certificate it does not trust, a name that does not match
            raise StoreUnavailable(target.display, f"TLS: {error.strerror or error}", setting,
                                   fix="check the host name in {where}, and that this machine trusts the server's "
                                   "certificate (SSL_CERT_FILE)") from None
    conn = Connection(target, sock, reply_timeout_s, setting)
    try:
        if target.password:
            auth = ["AUTH", target.username, target.password] if target.username else ["AUTH", target.password]
            _ready_step(conn, auth, "authentication failed", auth=True)
        if target.db:
            _ready_step(conn, ["SELECT", target.db], f"cannot select database {target.db}",
                        fix="check the database number in the URL of {where}")
    except BaseException:
        conn.close()
        raise
    return conn


def _ready_step(conn: Connection, command, what: str, auth: bool = False, fix: str = "") -> None:
    reply = conn._roundtrip(command)
    if isinstance(reply, ReplyError):
        raise StoreUnavailable(conn.target.display, f"{what}: {reply.text}", conn.setting,
                               auth or reply.text.startswith("NOAUTH"), fix)
