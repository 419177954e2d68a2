"""`hairtrigger up` on a machine without services: embedded Postgres and Redis (docs/contract.md
§2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pipelines.examples import trigger_body
from tests.support.servers import free_port


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _cli(cwd: Path, *args: str) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "hairtrigger.cli", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, str] = json.loads(done.stdout)
    return result


def _wait_healthy(base: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise AssertionError("hairtrigger up did not become healthy in 90 s")


@pytest.mark.slow
def test_up_with_embedded_servers_configures_a_trigger(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hairtrigger.cli", "up", "--port", str(port)],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_healthy(base, proc)
        account = _cli(tmp_path, "accounts", "create", "Embedded Co")
        key = _cli(tmp_path, "keys", "create", "--account", account["account_id"])
        headers = {"Authorization": f"Bearer {key['api_key']}"}
        with httpx.Client(base_url=f"{base}/api/v1", headers=headers, timeout=30) as client:
            workflow = client.post("/workflows", json={"name": "Welcome"}).json()
            created = client.post(
                f"/workflows/{workflow['id']}/trigger", json=trigger_body("contact_created")
            )
            assert created.status_code == 201, created.text
            assert client.get(f"/workflows/{workflow['id']}/trigger").json() == created.json()
        assert (tmp_path / ".hairtrigger" / "postgres").is_dir()
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert f"{base}/docs" in output
    assert "Shutting down" in output or "Finished server process" in output
    pid_file = tmp_path / ".hairtrigger" / "postgres" / "postmaster.pid"
    assert not pid_file.exists(), "embedded Postgres still running after up stopped"
