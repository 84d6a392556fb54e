# SPDX-License-Identifier: MIT
"""Fixtures of the Python tests: real coordinators, real processes, real
sockets (ipc:// in a temporary directory, HTTP on loopback). Run by meson
test (python/meson.build sets PYTHONPATH and SUTRA_COORDINATOR)."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

import pytest

import sutra

DIM = 8
HERE = os.path.dirname(os.path.abspath(__file__))


def coordinator_binary():
    path = os.environ.get("SUTRA_COORDINATOR")
    if not path:
        pytest.fail("SUTRA_COORDINATOR is not set (run through meson test)")
    return path


@pytest.fixture
def tmpdir_short():
    # Short paths: Unix socket addresses hold 107 bytes.
    d = tempfile.mkdtemp(prefix="sutra-py-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Coordinator:
    """sutra-coordinator on DIR/storage.dat with its default URLs."""

    def __init__(self, d, dim=DIM, extra=()):
        self.dir = d
        self.data = os.path.join(d, "storage.dat")
        self.dim = dim
        self.extra = list(extra)
        self.proc = None
        self.log = os.path.join(d, "coord.log")

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [coordinator_binary(), "--data", self.data, "--vector-dimension",
                 str(self.dim), "--check-interval-ms", "200"] + self.extra,
                stdout=log, stderr=log)
        # Ready when it answers: a ping waits for the connection.
        s = sutra.ConcurrentStorage(self.data, mode="server", timeout_ms=20000)
        try:
            s.ping()
        finally:
            s.close()
        return self

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def coordinator(tmpdir_short):
    c = Coordinator(tmpdir_short).start()
    yield c
    c.stop()


@pytest.fixture(params=["embedded", "server"])
def store(request, tmpdir_short):
    """A store in each mode: embedded (the coordinator in this process) and
    server (a sutra-coordinator process)."""
    coord = None
    if request.param == "server":
        coord = Coordinator(tmpdir_short).start()
        s = sutra.ConcurrentStorage(coord.data, mode="server", timeout_ms=5000)
    else:
        s = sutra.ConcurrentStorage(tmpdir_short, vector_dimension=DIM, mode="embedded")
    yield s
    s.close()
    if coord:
        coord.stop()


def free_listener():
    """A listening loopback socket for uvicorn --fd: requests queue in its
    backlog until the server accepts, so nothing polls for readiness."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit it: without, a response written in two
    # pieces waits for the client's delayed ACK (40 ms a request).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


class ApiServer:
    """uvicorn running sutra.api.app on an inherited listening socket."""

    def __init__(self, data, mode, workers=1, env=None):
        self.sock = free_listener()
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        e = dict(os.environ)
        e.update({"SUTRA_DATA": data, "SUTRA_STORAGE_MODE": mode,
                  "SUTRA_TIMEOUT_MS": "1500", "SUTRA_API_WAIT_TIMEOUT": "1",
                  "SUTRA_VECTOR_DIMENSION": str(DIM), "PYTHONDONTWRITEBYTECODE": "1"})
        e.update(env or {})
        fd = self.sock.fileno()
        args = [sys.executable, "-m", "uvicorn", "sutra.api.app:app", "--fd", str(fd),
                "--log-level", "warning"]
        if workers > 1:
            args += ["--workers", str(workers)]
        self.proc = subprocess.Popen(args, env=e, pass_fds=[fd])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.sock.close()
