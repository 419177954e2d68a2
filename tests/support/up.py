"""`hairtrigger up` as a user runs it, in a subprocess of its own."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.servers import free_port
from tests.support.wait import wait_until


class Up:
    """`hairtrigger up --port <free> *args` with `env` as its environment, run in `cwd`. Its
    output goes to a file there: a pipe nobody reads while it runs (under locust, say) would
    fill up with access log lines and stall the server. `timeout` bounds both the start and
    the stop."""

    def __init__(self, env: dict[str, str], cwd: Path, *args: str, timeout: float = 120) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.timeout = timeout
        self.output = cwd / f"up-{self.port}.log"
        with self.output.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hairtrigger.cli", "up", "--port", str(self.port), *args],
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_healthy(self) -> None:
        def healthy() -> bool:
            assert self.proc.poll() is None, self.output.read_text()
            try:
                return httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, "hairtrigger up to serve", timeout=self.timeout)

    def stop(self, check: bool = True) -> str:
        """SIGTERM (SIGKILL if it has not exited within the timeout); its whole output. With
        `check`, assert it exited with 0; a test with clean-up still to do after the stop
        passes check=False and asserts on `proc.returncode` itself."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        output = self.output.read_text()
        if check:
            assert self.proc.returncode == 0, output
        return output
