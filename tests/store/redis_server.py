"""A real redis-server for the shared-store tests: started by the test on a Unix socket in
a private directory (and, when asked, on 127.0.0.1 only), AOF on with appendfsync always
unless the test says otherwise, killed at teardown. Never another address.

Use it with `from store.redis_server import redis_server` (the fixture), or RedisServer
directly for restarts. Without redis-server the tests skip, and fail under CI=true (CI
installs it: scripts/test, Debian's redis-server package).
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from sessionward.errors import StoreCommandFailed
from sessionward.store import resp

REDIS_SERVER = shutil.which("redis-server")


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_tls_files(directory) -> tuple:
    """A throw-away CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key)."""
    d = str(directory)

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    # The extensions a strict verifier wants (Python 3.13 sets VERIFY_X509_STRICT): a CA with
    # basicConstraints and keyUsage, a leaf with its SAN and authorityKeyIdentifier.
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=sessionward test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-addext", "subjectKeyIdentifier=hash")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "san.ext"), "w") as ext:
        ext.write("subjectAltName=IP:127.0.0.1\nauthorityKeyIdentifier=keyid,issuer\n"
                  "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                  "extendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    return tuple(os.path.join(d, f) for f in ("ca.pem", "server.pem", "server.key"))


def need_redis_server() -> None:
    if REDIS_SERVER:
        return
    if os.environ.get("CI") == "true":
        pytest.fail("redis-server is missing (scripts/test installs Debian's redis-server)")
    pytest.skip("redis-server is not installed (apt-get install redis-server)")


class RedisServer:
    """One redis-server process on a socket in `directory`; start() waits for PING."""

    def __init__(self, directory, aof: bool = True, password: str = "", tcp: bool = False, tls=None) -> None:
        self.directory = str(directory)
        self.tls = tls  # (cert, key) files: the TCP port speaks TLS only (make_tls_files)
        self.aof = aof
        self.password = password
        self.port = free_loopback_port() if tcp or tls else 0
        # a Unix socket path must fit in sockaddr_un (108 bytes): pytest's tmp paths may not
        self._short = tempfile.mkdtemp(prefix="swrd-redis-")
        self.socket_path = os.path.join(self._short, "redis.sock")
        self.process = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"unix://{auth}{self.socket_path}"

    @property
    def tcp_url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"{'rediss' if self.tls else 'redis'}://{auth}127.0.0.1:{self.port}/0"

    def connect(self, **timeouts) -> resp.Connection:
        return resp.connect(resp.parse_store_url(self.url), **timeouts)

    def start(self) -> "RedisServer":
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                   "--unixsocket", self.socket_path, "--unixsocketperm", "700",
                   "--dir", self.directory, "--save", "", "--daemonize", "no",
                   "--logfile", os.path.join(self.directory, "redis.log"),
                   "--appendonly", "yes" if self.aof else "no", "--appendfsync", "always"]
        if self.password:
            command += ["--requirepass", self.password]
        if self.tls:
            command[2] = "0"
            command += ["--tls-port", str(self.port), "--tls-cert-file", self.tls[0], "--tls-key-file", self.tls[1],
                        "--tls-auth-clients", "no"]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with self.connect() as conn:
                    if conn.call("PING") == "PONG":
                        return self
            except OSError:  # StoreUnavailable: not listening yet
                pass
            except StoreCommandFailed:  # "LOADING": still reading its AOF back
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = open(os.path.join(self.directory, "redis.log")).read()[-2000:]
                raise RuntimeError(f"redis-server did not start (status {self.process.poll()}):\n{log}")
            time.sleep(0.02)

    def kill(self) -> None:
        """kill -9, as a crash: nothing is flushed that was not flushed already."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def cleanup(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()
        self.kill()
        shutil.rmtree(self._short, ignore_errors=True)


class Monitor:
    """What clients send `server` (started with tcp=True), as its MONITOR streams it, while
    the `with` block runs: `sent` is [(client address, command, the line)] for every command
    a client sent, a TCP client's port telling one connection from another (the commands a
    script runs are left out: those lines name "lua"). Counting a hook's round trips is
    behaviour: each is a wait on another process, and on a busy machine each wait pays a
    scheduling delay (docs/BENCHMARKS.md)."""

    _LINE = re.compile(r'^\+\d+\.\d+ \[\d+ ([^\]]+)\] "([^"]+)"')

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.sent: list = []

    def __enter__(self) -> "Monitor":
        self._sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        self._sock.sendall(b"MONITOR\r\n")
        self._file = self._sock.makefile("rb")
        assert self._file.readline() == b"+OK\r\n"
        return self

    def __exit__(self, *exc) -> None:
        marker = f"monitor-done-{os.getpid()}"
        try:
            with resp.connect(resp.parse_store_url(self.server.tcp_url)) as conn:
                conn.call("ECHO", marker)
            for raw in self._file:  # up to the marker: every earlier command has been streamed
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if marker in line:
                    break
                found = self._LINE.match(line)
                if found and found.group(1) != "lua":
                    self.sent.append((found.group(1), found.group(2).upper(), line))
            else:  # the stream ended first: what was seen may be only part of what was sent
                raise AssertionError(f"MONITOR ended before its marker; seen: {self.sent}")
        finally:
            self._file.close()
            self._sock.close()

    def by_client_of(self, needle: str) -> list:
        """The commands (names) sent by the connection that sent a line containing `needle`."""
        [client] = {address for address, _, line in self.sent if needle in line}
        return [command for address, command, _ in self.sent if address == client]


def _started(tmp_path, **options):
    need_redis_server()
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory, **options)
    try:
        yield server.start()
    finally:
        server.cleanup()


@pytest.fixture
def redis_server(tmp_path):
    """A started redis-server with AOF (appendfsync always), on a private Unix socket."""
    yield from _started(tmp_path)


@pytest.fixture
def tcp_redis_server(tmp_path):
    """The same, listening on 127.0.0.1 too: a TCP client's port names its connection in
    MONITOR's lines (Monitor)."""
    yield from _started(tmp_path, tcp=True)
