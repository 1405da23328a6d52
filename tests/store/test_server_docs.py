"""docs/SHARED_STORE.md, "Running a server for it": its commands, run as a reader would copy
them (their paths and port moved under a fresh private directory), start a redis-server
that sessionward reaches and answers with AOF on."""

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time

import pytest

from sessionward.store import resp

from helpers import REPO
from store.redis_server import free_loopback_port, need_redis_server

DOC = os.path.join(REPO, "docs", "SHARED_STORE.md")


def server_blocks() -> list:
    """The indented command blocks of the section, each a list of lines (continuations joined)."""
    text = open(DOC).read().split("## Running a server for it", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"(?:^    \S.*\n(?:^    .*\n)*)", text, re.M)
    return [block.replace("\\\n", " ").split("\n") for block in blocks]


@pytest.mark.parametrize("which", ["tcp", "unix"])
def test_the_documented_commands_start_a_server(which):
    need_redis_server()
    [block] = [b for b in server_blocks() if ("--unixsocket" in "".join(b)) == (which == "unix")]
    base = tempfile.mkdtemp(prefix="swrd-doc-")  # short: a socket path fits in 108 bytes
    port = free_loopback_port()
    script = "\n".join(block).replace("/var/lib/sessionward-redis", f"{base}/lib/data") \
        .replace("/run/sessionward", f"{base}/run").replace("6390", str(port))
    script = re.sub(r"^(\s*)redis-server", r"\1exec redis-server", script, flags=re.M)
    proc = subprocess.Popen(["bash", "-euc", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = (f"unix://{base}/run/redis.sock" if which == "unix"
               else f"redis://:{shlex.split(script.split('--requirepass', 1)[1])[0]}@127.0.0.1:{port}/0")
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, f"redis-server stopped:\n{proc.stdout.read().decode()[-1500:]}"
            try:
                with resp.connect(resp.parse_store_url(url)) as conn:
                    assert conn.call("PING") == "PONG"
                    assert conn.call("CONFIG", "GET", "appendonly") == [b"appendonly", b"yes"]
                    break
            except OSError:
                assert time.monotonic() < deadline, "no PONG within 10 s"
                time.sleep(0.05)
        assert oct(os.stat(f"{base}/lib/data").st_mode & 0o777) == "0o700"
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(base, ignore_errors=True)
