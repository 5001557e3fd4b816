"""A real ``mlflow server`` on 127.0.0.1 for the tests that need one (tracking, basic-auth)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def mlflow_server(root: Path, *args: str, env: dict | None = None, timeout: float = 180):
    """Start ``mlflow server ARGS`` with its store and artifacts in ``root``; yield its URI once
    ``/health`` answers; stop it (and give the caller's tracking URI back) afterwards."""
    port = _free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", *args, "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
           "--artifacts-destination", str(root / "artifacts"), "--workers", "1"]
    log_path = root / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=root,
                                env={**os.environ, "MLFLOW_TRACKING_URI": "", **(env or {})})
        uri = f"http://127.0.0.1:{port}"
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"mlflow server exited on start: {log_path.read_text()[-2000:]}")
                time.sleep(0.5)
        else:
            proc.kill()
            pytest.fail(f"mlflow server did not start in {timeout:g} s")
        try:
            yield uri
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            mlflow.set_tracking_uri(None)
