"""Scale-out on one machine (docs/operations.md §12): a two-node Ray cluster made with `ray start`,
`hairtrigger up --address` joining it, the partition actors spread over both nodes, and the
loss of one node (its raylet SIGKILLed) with events in flight: its partition restarts on the
surviving node and every event enrolls exactly once."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from actors.scheduler import SCHEDULER_NAME
from hairtrigger import embedded
from pipelines.config import Settings
from pipelines.examples import all_of, cond
from pipelines.sharding import partition_for, shard_for
from streams import names
from tests.support.db import Db
from tests.support.factories import Tenant, active_workflow, event, tenant_factory
from tests.support.servers import SCALE_OUT_REDIS_DB, free_port, own_servers
from tests.support.streams import Streams
from tests.support.up import Up
from tests.support.wait import wait_until

PARTITIONS = 2
MORE_PARTITIONS = 4
OBJECT_STORE_BYTES = 200 * 1000 * 1000
RAY = str(Path(sys.executable).parent / "ray")

# Asks the cluster's control store (GCS) where the named partition actors live. A driver of its
# own, in a subprocess, so this test never touches the `ray` state of the pytest process.
PROBE = """
import json, sys
import ray
from ray._private import state
ray.init(address=sys.argv[1], namespace="hairtrigger", configure_logging=False,
         log_to_driver=False, logging_level="ERROR")
nodes = {n["NodeID"]: {"alive": n["Alive"], "port": n["NodeManagerPort"]} for n in ray.nodes()}
found = sorted(state.actors().values(), key=lambda a: a["State"] != "DEAD")  # live ones win
actors = {a["Name"]: {"state": a["State"], "node_id": a["Address"]["NodeID"],
                      "restarts": a["NumRestarts"], "pid": a["Pid"]} for a in found if a["Name"]}
print(json.dumps({"nodes": nodes, "actors": actors}))
"""


class RayNode:
    """One `ray start --block` in a session of its own: its processes are its process group."""

    def __init__(self, root: Path, name: str, env: dict[str, str], args: list[str]) -> None:
        self.name = name
        self.node_manager_port = free_port()
        temp_dir = root / name
        temp_dir.mkdir(parents=True)
        ports = [
            f"--node-manager-port={self.node_manager_port}",
            f"--object-manager-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            f"--metrics-export-port={free_port()}",
        ]
        self.log = temp_dir / "ray-start.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [
                    RAY,
                    "start",
                    "--block",
                    *args,
                    *ports,
                    "--num-cpus=1",
                    f"--object-store-memory={OBJECT_STORE_BYTES}",
                    f"--temp-dir={temp_dir}",
                    "--disable-usage-stats",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_started(self) -> None:
        def started() -> bool:
            assert self.proc.poll() is None, self.log.read_text()
            return "Ray runtime started" in self.log.read_text()

        wait_until(started, f"ray node {self.name} to start", timeout=120)

    def processes(self) -> list[Any]:
        import psutil

        try:
            top = psutil.Process(self.proc.pid)
            return [top, *top.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def raylet_pid(self) -> int:
        found = [p.pid for p in self.processes() if p.name() == "raylet"]
        assert len(found) == 1, found
        return found[0]

    def stop(self) -> None:
        """`ray stop` for this node only: SIGTERM to its process group, SIGKILL after 5 s."""
        import psutil

        alive = self.processes()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(alive, timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for p in alive:  # anything that left the group
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        self.proc.wait(timeout=30)


@dataclass
class Cluster:
    head: RayNode
    worker: RayNode
    address: str
    env: dict[str, str]

    def probe(self) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-c", PROBE, self.address],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result

    def node_id(self, node: RayNode) -> str:
        nodes = self.probe()["nodes"]
        found = [i for i, n in nodes.items() if n["port"] == node.node_manager_port]
        assert len(found) == 1, nodes
        return found[0]


@pytest.fixture
def own_settings(settings: Settings, services: embedded.Services) -> Iterator[Settings]:
    """A database and a Redis database of the test's own. Sharing the session's database, the
    session's partition actors (alive until the session ends) would apply this deployment's
    triggers and publish its enrollment outbox to their own Redis."""
    with own_servers(services, "ht_scale", SCALE_OUT_REDIS_DB, settings.shards) as env:
        yield dataclasses.replace(
            settings, database_url=env["DATABASE_URL"], redis_url=env["REDIS_URL"]
        )


@pytest.fixture
def db_sync(own_settings: Settings) -> Db:
    """This module's tests read their own database."""
    assert own_settings.database_url is not None
    return Db(own_settings.database_url)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A head and a second node on this machine, 1 CPU and a 200 MB object store each, every
    port chosen free and a token of their own (never ~/.ray's), so other Ray sessions on the
    machine are not touched."""
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_USAGE_STATS_ENABLED": "0",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("RAY_ADDRESS", None)
    port = free_port()
    address = f"127.0.0.1:{port}"
    root = Path(tempfile.mkdtemp(prefix="htray-"))  # short: Unix socket paths are <= 107 bytes
    nodes: list[RayNode] = []
    try:
        head_args = [
            "--head",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--include-dashboard=false",
            f"--dashboard-port={free_port()}",
            f"--ray-client-server-port={free_port()}",
        ]
        nodes.append(RayNode(root, "head", env, head_args))
        nodes[0].wait_started()
        worker_args = [f"--address={address}", "--node-ip-address=127.0.0.1"]
        nodes.append(RayNode(root, "worker", env, worker_args))
        nodes[1].wait_started()
        yield Cluster(nodes[0], nodes[1], address, env)
    finally:
        for node in reversed(nodes):
            node.stop()
        shutil.rmtree(root, ignore_errors=True)


def up_joining(cluster: Cluster, settings: Settings, cwd: Path, partitions: int = PARTITIONS) -> Up:
    """`hairtrigger up --address <head>` as a user runs it."""
    assert settings.database_url is not None
    assert settings.redis_url is not None
    env = {
        **cluster.env,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "HAIRTRIGGER_SHARDS": str(settings.shards),
    }
    args = ("--address", cluster.address, "--partitions", str(partitions))
    return Up(env, cwd, *args, timeout=180)


def tenants_on_every_shard(make: Callable[..., Tenant], shards: int) -> dict[int, Tenant]:
    found: dict[int, Tenant] = {}
    for _ in range(200):
        t = make()
        found.setdefault(shard_for(t.account_id, shards), t)
        if len(found) == shards:
            return found
    raise AssertionError("no account on some shard")


class Sender(threading.Thread):
    """Keeps writing events (a new contact each) in chunks while the test does other things."""

    def __init__(self, redis_url: str, accounts: list[uuid.UUID], chunks: int) -> None:
        super().__init__(daemon=True)
        self.streams = Streams(redis_url)
        self.accounts, self.chunks = accounts, chunks
        self.sent: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for _ in range(self.chunks):
                batch = [
                    event(a, "contact.tag_added", tag="hot")
                    for a in self.accounts
                    for _ in range(100)
                ]
                self.streams.send(batch)
                self.sent.extend(e["event_id"] for e in batch)
                time.sleep(0.1)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.streams.close()


def unacknowledged(streams: Streams, shards: list[int]) -> int:
    """Entries of these shards not acknowledged yet: pending on a consumer or not delivered."""
    total = 0
    for shard in shards:
        for group in streams.client.xinfo_groups(names.events_stream(shard)):
            total += group["pending"] + (group["lag"] or 0)
    return total


COUNT = "SELECT count(*) FROM workflow_enrollments WHERE account_id = ANY($1)"


def partition_node(probe: dict[str, Any], partition: int) -> dict[str, Any]:
    actor: dict[str, Any] = probe["actors"][names.partition_consumer(partition)]
    return actor


@pytest.mark.slow
def test_partitions_spread_over_two_nodes_and_survive_losing_one(
    cluster: Cluster, own_settings: Settings, db_sync: Db, tmp_path: Path
) -> None:
    settings = own_settings
    assert settings.redis_url is not None
    started = time.monotonic()
    up = up_joining(cluster, settings, tmp_path)
    made = tenant_factory(db_sync, up.base)
    make = next(made)
    try:
        up.wait_healthy()
        head_id, worker_id = cluster.node_id(cluster.head), cluster.node_id(cluster.worker)

        # Spread: one partition actor on each node.
        before = cluster.probe()
        placed = {p: partition_node(before, p) for p in range(PARTITIONS)}
        assert {a["node_id"] for a in placed.values()} == {head_id, worker_id}, before
        assert all(a["state"] == "ALIVE" for a in placed.values()), before
        lost = next(p for p, a in placed.items() if a["node_id"] == worker_id)

        # Every shard gets an account with an active trigger, configured through the API of
        # `up`, so the config push reaches actors on both nodes.
        tenants = tenants_on_every_shard(make, settings.shards)
        for t in tenants.values():
            active_workflow(t.client, "contact", "tag_added", all_of(cond("tag", "equals", "hot")))
        everyone = [t.account_id for t in tenants.values()]
        lost_shards = [s for s in tenants if partition_for(s, PARTITIONS) == lost]
        on_lost = [tenants[s].account_id for s in lost_shards]

        # Warm-up: all shards processed on both nodes.
        streams = Streams(settings.redis_url)
        warm = [event(a, "contact.tag_added", tag="hot") for a in everyone for _ in range(250)]
        streams.send(warm)
        wait_until(lambda: db_sync.value(COUNT, everyone) == len(warm), "the warm-up events")

        # Load in flight, then the second node's raylet dies.
        sender = Sender(settings.redis_url, everyone, chunks=60)
        sender.start()
        wait_until(
            lambda: db_sync.value(COUNT, on_lost) > 1000 * len(on_lost),
            "the lost node's partition to be busy",
        )
        unacked = unacknowledged(streams, lost_shards)
        os.kill(cluster.worker.raylet_pid(), signal.SIGKILL)
        killed_at = time.monotonic()
        at_kill = db_sync.value(COUNT, on_lost)
        sender.join(timeout=120)
        assert sender.error is None, sender.error
        sent = [e["event_id"] for e in warm] + sender.sent
        assert at_kill < len(sent) * len(on_lost) // len(everyone), "the kill was too late"

        # Everything finishes once the partition restarted on the head node.
        wait_until(lambda: db_sync.value(COUNT, everyone) >= len(sent), "all events", timeout=300)
        recovered_s = time.monotonic() - killed_at
        wait_until(streams.drained, "the shards to drain", timeout=120)
        wait_until(
            lambda: db_sync.value("SELECT count(*) FROM enrollment_outbox") == 0, "the outbox"
        )
        after = cluster.probe()
        moved = partition_node(after, lost)

        rows = db_sync.fetch(
            "SELECT id, event_id FROM workflow_enrollments WHERE account_id = ANY($1)", everyone
        )
        logged = db_sync.value(
            "SELECT count(*) FROM trigger_execution_logs WHERE account_id = ANY($1)", everyone
        )
        published = {e["id"] for a in everyone for e in streams.enrollments(a)}
        streams.close()
    finally:
        output = up.stop(check=False)
        with contextlib.suppress(StopIteration):
            next(made)  # the factory's clean-up
    assert up.proc.returncode == 0, output

    # Nothing lost, nothing duplicated: one enrollment (and one log) per event.
    assert len(rows) == len(sent)
    assert sorted(str(r["event_id"]) for r in rows) == sorted(sent)
    assert logged == len(sent)
    assert published == {str(r["id"]) for r in rows}
    # The lost partition was restarted on the surviving node; the node is gone.
    assert after["nodes"][worker_id]["alive"] is False
    assert moved["state"] == "ALIVE", after
    assert moved["node_id"] == head_id, after
    assert moved["restarts"] >= 1, after
    survivor = partition_node(after, 1 - lost)
    assert survivor["node_id"] == head_id, after
    assert survivor["restarts"] == 0, after
    assert after["actors"][SCHEDULER_NAME]["state"] == "ALIVE", after
    print(
        f"\nscale-out: {len(sent):,} events over {settings.shards} shards; partition {lost} "
        f"on the killed node: {at_kill:,} enrollments and {unacked:,} unacknowledged entries "
        f"at the kill; all events done "
        f"{recovered_s:.1f} s after it; restarts {moved['restarts']}; "
        f"whole test {time.monotonic() - started:.0f} s"
    )


def consumers(streams: Streams, shard: int) -> set[str]:
    """The consumers that ever read this shard's consumer group."""
    stream = names.events_stream(shard)
    found = streams.client.xinfo_consumers(stream, names.CONSUMER_GROUP)
    return {c["name"].decode() for c in found}


@pytest.mark.slow
def test_restart_with_more_partitions_spreads_them_and_they_take_over_shards(
    cluster: Cluster, own_settings: Settings, db_sync: Db, tmp_path: Path
) -> None:
    settings = own_settings
    """Adding partitions is a restart with a larger --partitions: the shards are re-divided
    (partition p owns s % N == p), events queued meanwhile are processed once."""
    assert settings.redis_url is not None
    first = up_joining(cluster, settings, tmp_path, partitions=2)
    made = tenant_factory(db_sync, first.base)
    make = next(made)
    try:
        try:
            first.wait_healthy()
            tenants = tenants_on_every_shard(make, settings.shards)
            for t in tenants.values():
                active_workflow(
                    t.client, "contact", "tag_added", all_of(cond("tag", "equals", "hot"))
                )
            everyone = [t.account_id for t in tenants.values()]
            streams = Streams(settings.redis_url)
            sent = [event(a, "contact.tag_added", tag="hot") for a in everyone for _ in range(250)]
            streams.send(sent)
            wait_until(lambda: db_sync.value(COUNT, everyone) == len(sent), "the first events")
        finally:
            output = first.stop(check=False)
        assert first.proc.returncode == 0, output
        queued = [event(a, "contact.tag_added", tag="hot") for a in everyone for _ in range(250)]
        streams.send(queued)  # while nothing runs
        sent += queued
        second = up_joining(cluster, settings, tmp_path, partitions=MORE_PARTITIONS)
        try:
            second.wait_healthy()
            wait_until(lambda: db_sync.value(COUNT, everyone) >= len(sent), "the queued events")
            wait_until(streams.drained, "the shards to drain")
            placed = cluster.probe()
            rows = db_sync.fetch(
                "SELECT event_id FROM workflow_enrollments WHERE account_id = ANY($1)", everyone
            )
            readers = {s: consumers(streams, s) for s in range(settings.shards)}
            streams.close()
        finally:
            output = second.stop(check=False)
        assert second.proc.returncode == 0, output
    finally:
        with contextlib.suppress(StopIteration):
            next(made)

    assert sorted(str(r["event_id"]) for r in rows) == sorted(e["event_id"] for e in sent)
    actors = [partition_node(placed, p) for p in range(MORE_PARTITIONS)]
    assert all(a["state"] == "ALIVE" for a in actors), placed
    per_node = sorted(sum(a["node_id"] == n for a in actors) for n in placed["nodes"])
    assert per_node == [2, 2], placed
    for shard, names_seen in readers.items():
        assert names.partition_consumer(shard % MORE_PARTITIONS) in names_seen, readers
