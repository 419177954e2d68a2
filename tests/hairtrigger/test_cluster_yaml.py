"""ray-cluster.yaml is a cluster-launcher file the installed Ray accepts, with what we rely on."""

from __future__ import annotations

import copy
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray
import ray.autoscaler
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from hairtrigger.cli import _parser

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_YAML = ROOT / "ray-cluster.yaml"


def ray_schema() -> dict[str, Any]:
    path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def check_with_ray(config: dict[str, Any]) -> None:
    """Ray's own schema for the file as written, then what `ray up` does: fill in the provider's
    defaults and validate again (ray.autoscaler._private.commands._bootstrap_config)."""
    jsonschema.validate(config, ray_schema())
    validate_config(prepare_config(copy.deepcopy(config)))


def _has_flag(commands: list[str], flag: str) -> bool:
    return any(re.search(rf"{re.escape(flag)}(=|\s)\S", c) for c in commands)


def what_we_rely_on(config: dict[str, Any]) -> list[str]:
    """What is missing for Hairtrigger (empty when the file is fine)."""
    problems = []
    mounts = config.get("file_mounts", {})
    checkout = [remote for remote, local in mounts.items() if local == "."]
    setup = config.get("setup_commands", [])
    installs = [c for c in setup if "pip install" in c and any(m in c for m in checkout)]
    if not checkout or not installs:
        problems.append("setup_commands must pip install the checkout that file_mounts copies")
    head = [c for c in config.get("head_start_ray_commands", []) if "ray start" in c]
    workers = [c for c in config.get("worker_start_ray_commands", []) if "ray start" in c]
    if not head or not workers:
        problems.append("head and worker start commands must run `ray start`")
    if not any(re.search(r"--head\b", c) for c in head):
        problems.append("the head's `ray start` needs --head")
    for flag in ("--dashboard-host", "--dashboard-port", "--metrics-export-port"):
        if not _has_flag(head, flag):
            problems.append(f"the head's `ray start` needs {flag}")
    if not _has_flag(workers, "--metrics-export-port"):
        problems.append("the workers' `ray start` needs --metrics-export-port")
    if config.get("provider", {}).get("type") != "local":
        problems.append("the default provider is the on-prem `local` one")
    return problems


def load() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(CLUSTER_YAML.read_text())
    return config


def test_installed_ray_is_the_pinned_one() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = [d for d in pyproject["project"]["dependencies"] if d.startswith("ray[")]
    assert pins == [f"ray[default]=={ray.__version__}"]
    assert f"({ray.__version__})" in CLUSTER_YAML.read_text().splitlines()[0]


def test_cluster_yaml_passes_rays_own_validation() -> None:
    check_with_ray(load())


def test_cluster_yaml_has_what_hairtrigger_relies_on() -> None:
    config = load()
    assert what_we_rely_on(config) == []
    assert config["provider"]["head_ip"]
    assert config["provider"]["worker_ips"]


def test_documented_job_entrypoint_is_a_valid_command() -> None:
    """The `ray job submit ... -- hairtrigger up ...` line in the file's comments."""
    lines = [line for line in CLUSTER_YAML.read_text().splitlines() if "-- hairtrigger up" in line]
    assert lines
    args = shlex.split(lines[0].split("-- hairtrigger", 1)[1])
    parsed = _parser().parse_args(args)
    assert parsed.address == "auto"
    assert parsed.host == "0.0.0.0"


def _mutate(config: dict[str, Any], change: str) -> None:
    if change == "typo_key":
        config["head_start_commands"] = config.pop("head_start_ray_commands")
    elif change == "worker_ips_not_a_list":
        config["provider"]["worker_ips"] = "10.0.0.11"
    elif change == "setup_list_is_a_string":
        config["setup_commands"] = 42


@pytest.mark.parametrize("change", ["typo_key", "worker_ips_not_a_list", "setup_list_is_a_string"])
def test_a_broken_copy_fails_rays_validation(tmp_path: Path, change: str) -> None:
    config = load()
    _mutate(config, change)
    broken = tmp_path / "ray-cluster.yaml"
    broken.write_text(yaml.safe_dump(config))
    with pytest.raises(jsonschema.ValidationError):
        check_with_ray(yaml.safe_load(broken.read_text()))


def _drop_metrics_port(config: dict[str, Any]) -> None:
    config["worker_start_ray_commands"] = [
        re.sub(r"\s*--metrics-export-port=\d+", "", c) for c in config["worker_start_ray_commands"]
    ]


def _no_install(config: dict[str, Any]) -> None:
    config["setup_commands"] = [c for c in config["setup_commands"] if "pip install" not in c]


def _no_dashboard_host(config: dict[str, Any]) -> None:
    config["head_start_ray_commands"] = [
        c.replace("--dashboard-host=0.0.0.0", "") for c in config["head_start_ray_commands"]
    ]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (_drop_metrics_port, "the workers' `ray start` needs --metrics-export-port"),
        (_no_install, "setup_commands must pip install the checkout that file_mounts copies"),
        (_no_dashboard_host, "the head's `ray start` needs --dashboard-host"),
    ],
)
def test_a_copy_without_our_pieces_is_refused(change: Any, problem: str) -> None:
    config = load()
    change(config)
    check_with_ray(config)  # still a valid Ray file: only our own checks catch it
    assert problem in what_we_rely_on(config)
