"""A real redis-server for tests: on a free 127.0.0.1 port, in a temporary folder, nothing saved."""

from __future__ import annotations

import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

_folders: dict[int, str] = {}


class RedisMissing(Exception):
    "redis-server is not installed (Debian: apt install redis-server)"


def start_redis(timeout: float = 10.0) -> tuple[str, subprocess.Popen[bytes]]:
    "A new redis-server; returns its URL and its process (give it to `stop`)."
    exe = shutil.which("redis-server")
    if exe is None:
        raise RedisMissing(RedisMissing.__doc__)
    for _ in range(3):  # another process may take the free port before the server binds it
        port, folder = _free_port(), tempfile.mkdtemp(prefix="taskctl-redis-")
        args = [exe, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
        process = subprocess.Popen(
            [*args, "--dir", folder], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent
        )
        _folders[process.pid] = folder
        url = f"redis://127.0.0.1:{port}/0"
        if _wait_ready(url, process, timeout):
            return url, process
        stop(process)
    raise RuntimeError("redis-server did not start on a free 127.0.0.1 port")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    shutil.rmtree(_folders.pop(process.pid, ""), ignore_errors=True)


def _die_with_parent() -> None:
    "A test process that crashes (an xdist worker) must not leave its server behind (Linux only)."
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> bool:
    client = Redis.from_url(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                return bool(client.ping())
            except RedisConnectionError:
                time.sleep(0.02)
        return False
    finally:
        client.close()
