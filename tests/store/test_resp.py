"""The minimal RESP2 client (sessionward.store.resp): URLs, AUTH and SELECT on a real
redis-server, scripts, and failing fast (one line, no password, well under a
second) when the server is down, missing or paused; its imports stay light."""

import os
import shutil
import subprocess
import sys
import time

import pytest

from sessionward.errors import ConfigError, StoreCommandFailed, StoreUnavailable
from sessionward.store import resp, shared

from store.redis_server import RedisServer, free_loopback_port, make_tls_files, need_redis_server


@pytest.mark.parametrize("url, fields", [
    ("redis://127.0.0.1:6380/2", ("redis", "127.0.0.1", 6380, "", "", "", 2, "redis://127.0.0.1:6380/2")),
    ("redis://localhost", ("redis", "localhost", 6379, "", "", "", 0, "redis://localhost:6379/0")),
    ("rediss://ann:p%40ss@10.0.0.5:6390/1", ("rediss", "10.0.0.5", 6390, "", "ann", "p@ss", 1, "rediss://ann@10.0.0.5:6390/1")),
    ("redis://:secret@[::1]:7000", ("redis", "::1", 7000, "", "", "secret", 0, "redis://[::1]:7000/0")),
    ("unix:///run/redis/redis.sock?db=3", ("unix", "", 6379, "/run/redis/redis.sock", "", "", 3, "unix:///run/redis/redis.sock?db=3")),
    ("redis://:a long password@h:1/0", ("redis", "h", 1, "", "", "a long password", 0, "redis://h:1/0")),
    ("unix://:pw@/tmp/r.sock", ("unix", "", 6379, "/tmp/r.sock", "", "pw", 0, "unix:///tmp/r.sock")),
    ("unix:///tmp/my dir/r.sock", ("unix", "", 6379, "/tmp/my dir/r.sock", "", "", 0, "unix:///tmp/my dir/r.sock")),
])
def test_store_urls_parse_and_display_without_the_password(url, fields):
    t = resp.parse_store_url(url)
    assert (t.scheme, t.host, t.port, t.path, t.username, t.password, t.db, t.display) == fields


@pytest.mark.parametrize("url, problem", [
    ("http://x", "must start with redis://"),
    ("redis://:hunter2@", "no host"),
    ("redis://h:99999", "not a port number"),
    ("redis://h/zero", "is not a number"),
    ("unix://relative.sock", "absolute socket path"),
    ("unix:///s?timeout=1", "unknown parameter 'timeout'"),
    ("redis://[::1:6391/0", r"opens \[ and does not close it"),  # not host "[::1:6391" on port 6379
    ("redis://h:1/0?db=2", r"names its database twice \(/0 and \?db=2\)"),  # not db 0, ?db=2 dropped
    ("redis://a b:1/0", "holds a space"),
    ("redis://:hunter2@h/0 1", "holds a space"),
])
def test_bad_store_urls_are_one_line_without_the_password(url, problem):
    with pytest.raises(ConfigError, match=problem) as caught:
        resp.parse_store_url(url)
    assert "hunter2" not in str(caught.value) and "\n" not in str(caught.value)


def test_key_prefix_is_per_user_and_refuses_glob_characters():
    assert resp.key_prefix("alice") == "sessionward:{alice}:"
    for bad in ("", "a*", "b}", "c:d", "e f"):
        with pytest.raises(ConfigError):
            resp.key_prefix(bad)


def test_replies_of_every_kind_and_error_replies(redis_server):
    with redis_server.connect() as conn:
        assert conn.call("PING") == "PONG"
        assert conn.call("SET", "k", "v\r\nwith crlf") == "OK"
        assert conn.call("GET", "k") == b"v\r\nwith crlf"
        assert conn.call("GET", "missing") is None
        assert conn.call("INCR", "n") == 1
        assert conn.call("RPUSH", "l", "a", b"b", 3) == 3 and conn.call("LRANGE", "l", 0, -1) == [b"a", b"b", b"3"]
        big = "x" * 200_000  # more than one recv()
        conn.call("SET", "big", big)
        assert conn.call("GET", "big") == big.encode()
        with pytest.raises(StoreCommandFailed, match="refused INCR: WRONGTYPE"):
            conn.call("INCR", "l")
        assert conn.call("PING") == "PONG"  # an error reply leaves the connection usable


def test_a_script_runs_on_a_server_that_never_saw_it(redis_server):
    script = resp.Script("return {KEYS[1], ARGV[1], 7}")
    with redis_server.connect() as conn:
        assert conn.run_script(script, ["k"], ["a"]) == [b"k", b"a", 7]
        conn.call("SCRIPT", "FLUSH")  # as after a server restart
        assert conn.run_script(script, ["k"], ["b"]) == [b"k", b"b", 7]
        with pytest.raises(StoreCommandFailed, match="a sessionward script"):
            conn.run_script(resp.Script("return redis.error_reply('E broken')"), [], [])


def test_password_and_database_over_tcp_on_loopback(tmp_path):
    need_redis_server()
    server = RedisServer(tmp_path, password="s3cret-pw", tcp=True)
    try:
        server.start()
        with resp.connect(resp.parse_store_url(server.tcp_url.replace("/0", "/5"))) as five:
            five.call("SET", "where", "five")
        with resp.connect(resp.parse_store_url(server.tcp_url)) as zero:
            assert zero.call("GET", "where") is None  # SELECT happened: another database
        wrong = server.tcp_url.replace("s3cret-pw", "wrong-pw")
        with pytest.raises(StoreUnavailable) as caught:
            resp.connect(resp.parse_store_url(wrong))
        message = str(caught.value)
        assert message.startswith(f"shared store redis://127.0.0.1:{server.port}/0 unavailable: authentication failed: WRONGPASS")
        assert "wrong-pw" not in message and "s3cret" not in message and "\n" not in message
        assert ".;" not in message and message.endswith("; check the password (and user name) in the URL of SESSIONWARD_STORE")
        # No password in the URL of a server that wants one: unavailable to us, with the same
        # advice (not "refused a sessionward script: NOAUTH", nor "start it")
        bare = f"redis://127.0.0.1:{server.port}/0"
        for command in (("PING",), ("GET", "k")):
            with pytest.raises(StoreUnavailable) as caught:
                with resp.connect(resp.parse_store_url(bare)) as conn:
                    conn.call(*command)
            assert str(caught.value) == (f"shared store {bare} unavailable: it asks for a password, and the URL gives "
                                         "none; check the password (and user name) in the URL of SESSIONWARD_STORE")
        with pytest.raises(StoreUnavailable, match="asks for a password") as caught:
            with resp.connect(resp.parse_store_url(bare), setting="/home/u/.claude/sessionward.toml") as conn:
                conn.run_script(resp.Script("return 1"), [], [])
        assert caught.value.hint == "check the password (and user name) in the URL of `store` in /home/u/.claude/sessionward.toml"
        # A database the server does not have: the server is up, "start it" would mislead
        with pytest.raises(StoreUnavailable) as caught:
            resp.connect(resp.parse_store_url(server.tcp_url.replace("/0", "/99")))
        assert str(caught.value) == (f"shared store redis://127.0.0.1:{server.port}/99 unavailable: cannot select "
                                     "database 99: ERR DB index is out of range; check the database number in the "
                                     "URL of SESSIONWARD_STORE")
        # rediss:// to this server, which speaks no TLS: it waits for a command, the handshake times out
        plain_tls = server.tcp_url.replace("redis://", "rediss://")
        with pytest.raises(StoreUnavailable) as caught:
            resp.connect(resp.parse_store_url(plain_tls))
        assert str(caught.value) == (f"shared store rediss://127.0.0.1:{server.port}/0 unavailable: no TLS handshake "
                                     f"within {resp.CONNECT_TIMEOUT_S:g} s; if the server speaks no TLS, give a redis:// URL "
                                     "in SESSIONWARD_STORE")
    finally:
        server.cleanup()


def fails_fast(url: str) -> tuple:
    """The error message and how long connect + one command took to fail."""
    start = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        with resp.connect(resp.parse_store_url(url)) as conn:
            conn.call("PING")
    assert caught.value.exit_code == 3 and isinstance(caught.value, ConnectionError)
    return str(caught.value), time.monotonic() - start


def test_server_down_fails_in_one_line_without_the_password_and_fast(tmp_path):
    port = free_loopback_port()  # nothing listens there
    message, took = fails_fast(f"redis://:hunter2@127.0.0.1:{port}/0")
    assert message.startswith(f"shared store redis://127.0.0.1:{port}/0 unavailable: Connection refused; ")
    assert "hunter2" not in message and "\n" not in message and took < 1.0
    message, took = fails_fast(f"unix://{tmp_path}/no.sock")
    # not "No such file or directory": the socket's path says which file
    assert message.startswith(f"shared store unix://{tmp_path}/no.sock unavailable: no socket file {tmp_path}/no.sock; ")
    assert took < 1.0


def test_a_unix_url_that_names_no_socket_says_what_is_wrong_with_the_path_not_start_it(redis_server, tmp_path):
    sock = redis_server.url[len("unix://"):]
    (tmp_path / "file").write_text("")
    cases = {
        f"unix://{sock}/0": f"{sock} is the socket, and a path cannot go on after it; give a database as "
                            "unix:///path/to/socket?db=N in SESSIONWARD_STORE, not after the path",
        f"unix://{tmp_path}": f"{tmp_path} is not a socket; check the socket's path in SESSIONWARD_STORE "
                              "(redis-server's unixsocket)",
        f"unix://{tmp_path}/file": f"{tmp_path}/file is not a socket; check the socket's path in SESSIONWARD_STORE "
                                   "(redis-server's unixsocket)",
        f"unix://{tmp_path}/file/x.sock": f"a part of {tmp_path}/file/x.sock is not a directory; check the socket's "
                                          "path in SESSIONWARD_STORE",
    }
    for url, why in cases.items():
        assert fails_fast(url)[0] == f"shared store {url} unavailable: {why}"


def test_a_paused_server_fails_within_the_reply_timeout_never_hangs(redis_server):
    with redis_server.connect() as before:
        redis_server.pause()  # SIGSTOP: the kernel still accepts connections, nobody answers
        try:
            message, took = fails_fast(redis_server.url)
            assert message == f"shared store {redis_server.url} unavailable: no reply within 0.25 s; " \
                              "start it, or check SESSIONWARD_STORE (unset it to use the local store)"
            assert 0.2 < took < 1.0
            start = time.monotonic()
            with pytest.raises(StoreUnavailable, match="no reply within"):
                before.call("PING")  # a connection made before the pause
            assert time.monotonic() - start < 1.0
            with pytest.raises(StoreUnavailable, match="closed after an earlier failure"):
                before.call("PING")  # half a reply may be in flight: never reused
        finally:
            redis_server.resume()


def test_the_client_imports_nothing_heavy():
    heavy = ("socket", "ssl", "enum", "re", "json", "selectors", "hashlib", "subprocess", "argparse", "dataclasses")
    code = ("import sys, sessionward.store.resp, sessionward.store.redis_leases; "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""}).stdout
    assert out.strip() == "[]"


def test_rediss_verifies_the_server_and_speaks_tls(tmp_path, monkeypatch):
    need_redis_server()
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    ca, cert, key = make_tls_files(tmp_path)
    server = RedisServer(tmp_path, password="tls-pw", tls=(cert, key))
    try:
        server.start()
        url = resp.parse_store_url(server.tcp_url)
        with pytest.raises(StoreUnavailable, match="CERTIFICATE_VERIFY_FAILED") as caught:
            resp.connect(url).call("PING")  # our CA is not in the system's store
        assert "tls-pw" not in str(caught.value) and "\n" not in str(caught.value)
        assert caught.value.hint == ("check the host name in SESSIONWARD_STORE, and that this machine trusts the "
                                    "server's certificate (SSL_CERT_FILE)")
        monkeypatch.setenv("SSL_CERT_FILE", ca)  # OpenSSL reads it when the context loads its defaults
        with resp.connect(url) as conn:
            assert conn.call("PING") == "PONG"
            conn.call("SET", "over", "tls")
            assert conn.call("GET", "over") == b"tls"
        with pytest.raises(StoreUnavailable, match="unavailable: "):
            resp.connect(resp.parse_store_url(server.tcp_url.replace("rediss://", "redis://"))).call("PING")
    finally:
        server.cleanup()


def test_a_process_keeps_one_connection_and_a_forked_child_gets_its_own(redis_server, tmp_path, monkeypatch):
    from sessionward.store import shared

    monkeypatch.setenv("SESSIONWARD_HOME", str(tmp_path / "state"))
    url = redis_server.url
    try:
        first = shared.connection(url)
        assert shared.connection(url) is first
        first.call("SET", "k", "parent")
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its own socket, the parent's left untouched
            try:
                child = shared.connection(url)
                os.write(w, b"1" if child is not first and child.call("GET", "k") == b"parent" else b"0")
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        assert os.read(r, 1) == b"1"
        assert first.call("GET", "k") == b"parent"  # the parent's connection still answers in order
    finally:
        shared.disconnect()
    assert shared.prefix().startswith("sessionward:{")


def test_what_this_host_remembers_is_kept_per_server(tmp_path):
    # the epoch and the highest fence, per server (its address without the password): another
    # server is a first use there; a line written before this was per server counts for any
    a, b = "redis://127.0.0.1:6390/0", "unix:///run/sessionward/redis.sock"
    assert shared.known_epoch(a) == "" and shared.known_fence(a) == 0
    shared.remember_epoch("abc123", a)
    shared.remember_fence(7, a)
    shared.remember_fence(3, a)  # never down
    assert (shared.known_epoch(a), shared.known_fence(a)) == ("abc123", 7)
    assert (shared.known_epoch(b), shared.known_fence(b)) == ("", 0)
    shared.remember_epoch("def456", b)
    assert (shared.known_epoch(a), shared.known_epoch(b)) == ("abc123", "def456")
    private = os.path.join(os.environ["SESSIONWARD_HOME"], "sessionward")
    with open(os.path.join(private, "store-fence"), "w") as f:
        f.write("12\n")  # as written before the memory was per server
    assert shared.known_fence(a) == shared.known_fence(b) == 12
    shared.remember_fence(5, a)  # its own line keeps the higher of the two
    assert shared.known_fence(a) == 12 and shared.known_fence(b) == 0


def test_a_long_array_split_across_reads_comes_whole(redis_server):
    # the registry's reads are long arrays of bulk strings, taken in place while whole in the
    # buffer (Connection._read_array): one that spans many reads, cut anywhere, and arrays
    # mixing every kind of element, must come whole and in order
    values = {f"f{i}": ("v%d;" % i) * (i % 60) for i in range(5000)}
    with redis_server.connect() as conn:
        conn.call("HSET", "h", *[part for pair in values.items() for part in pair])
        flat = conn.call("HGETALL", "h")
        assert len(flat) == 10_000 and sum(len(part) for part in flat) > 4 * 65536
        assert dict(zip(flat[::2], flat[1::2])) == {k.encode(): v.encode() for k, v in values.items()}
        mixed = resp.Script("return {1, 'a', '', false, {2, {'b'}}, -3, redis.error_reply('E no')}")
        reply = conn.run_script(mixed, [], [])
        assert reply[:6] == [1, b"a", b"", None, [2, [b"b"]], -3] and str(reply[6]) == "E no"


class _TricklingSocket:
    """A socket whose reads return at most `step` bytes of `data`: a reply cut anywhere."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step = data, step

    def settimeout(self, _timeout) -> None:
        pass

    def recv(self, size: int, *flags) -> bytes:
        chunk, self.data = self.data[:min(size, self.step)], self.data[min(size, self.step):]
        return chunk

    def close(self) -> None:
        pass


def test_a_reply_cut_at_any_byte_is_read_whole():
    # Connection._read_array takes an element in place only when it is whole in the buffer,
    # its trailing CRLF included; cut anywhere (inside a header, between \r and \n, inside the
    # data or just before its CRLF), it must read on, not take a piece or lose its place.
    reply = (b"*7\r\n$3\r\nabc\r\n:42\r\n$-1\r\n$0\r\n\r\n*2\r\n$2\r\nxy\r\n:-7\r\n-ERR no\r\n"
             b"$12\r\nhello\r\nworld\r\n+OK\r\n")
    expected = [b"abc", 42, None, b"", [b"xy", -7], "ERR no", b"hello\r\nworld"]
    target = resp.parse_store_url("unix:///nowhere.sock")
    for step in range(1, len(reply) + 1):
        conn = resp.Connection(target, _TricklingSocket(reply + reply, step))
        conn._deadline = time.monotonic() + 10
        for _ in range(2):  # and each next reply starts where the last one ended
            got = conn._read_reply()
            assert [str(x) if isinstance(x, resp.ReplyError) else x for x in got] == expected, step
            assert conn._read_reply() == "OK", step
