"""docker-compose.yml as the README describes it: ``docker compose up`` runs one bot beside one
Redis; the ``scale`` profile runs webhook workers behind a load balancer on a six-node Redis
Cluster. Docker cannot run here (no daemon, no registry), so this reads the files: every name
one service uses must be one the others define."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import yaml

from utils.config import RedisConfig
from utils.redis_conn import cluster_nodes, is_cluster_url

ROOT: Final = Path(__file__).resolve().parents[1]
COMPOSE: Final[dict[str, Any]] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: Final[dict[str, Any]] = COMPOSE["services"]


def _in_profile(name: str | None) -> set[str]:
    return {s for s, spec in SERVICES.items() if name in spec.get("profiles", [None])}


def test_plain_compose_up_runs_one_bot_and_one_redis() -> None:
    assert _in_profile(None) == {"bot", "redis"}
    assert SERVICES["bot"]["environment"]["REDIS_URL"] == "redis://redis:6379/0"


def test_the_scale_profile_runs_workers_on_a_cluster_of_six_nodes() -> None:
    nodes = {s for s in _in_profile("scale") if s.startswith("redis-node-")}
    assert len(nodes) == 6
    for node in nodes:
        command = SERVICES[node]["command"]
        assert command[command.index("--cluster-enabled") + 1] == "yes"
        assert command[command.index("--appendonly") + 1] == "yes"  # a restart keeps its data
    url = SERVICES["worker"]["environment"]["REDIS_URL"]
    assert is_cluster_url(url)
    assert RedisConfig(url=url).url is not None  # the bot's own settings accept it
    assert {host for host, _ in cluster_nodes(url)} <= nodes
    init = SERVICES["redis-cluster-init"]
    assert set(init["depends_on"]) == nodes  # joins only once every node answers
    assert "--cluster-replicas 1" in init["command"][0]
    assert "for i in 1 2 3 4 5 6" in init["command"][0]
    assert SERVICES["worker"]["depends_on"] == {
        "redis-cluster-init": {"condition": "service_completed_successfully"}
    }


def test_the_load_balancer_forwards_to_the_workers_port() -> None:
    volume = SERVICES["lb"]["volumes"][0].split(":")[0]
    conf = (ROOT / volume).read_text()
    target = re.search(r"set \$workers http://([\w-]+):(\d+);", conf)
    assert target is not None
    assert target.group(1) == "worker"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"TELEGRAM_HTTP_PORT={target.group(2)}" in dockerfile
    assert "proxy_next_upstream error timeout http_503 non_idempotent" in conf  # POSTs too
