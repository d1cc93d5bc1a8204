"""A real Redis Cluster on loopback for the tests: ``masters`` ``redis-server --cluster-enabled
yes`` processes (and ``replicas`` per master), joined with ``redis-cli --cluster create``.

Synchronous on purpose: a worker-wide cluster is built once (a session fixture) and emptied
before each test, and a test that kills a node does it with a signal, not a coroutine.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Final

import redis

__all__ = ("ClusterNodeProcess", "LocalCluster")

_READY_S: Final = 30.0


def free_port() -> int:
    """A free port whose cluster bus port (+10,000) is free too: the bus needs it, and a
    node refuses a port above 55,535."""
    while True:
        port = random.randint(20_000, 55_535)  # noqa: S311 - a port, not a secret
        if _bindable(port) and _bindable(port + 10_000):
            return port


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class ClusterNodeProcess:
    """One ``redis-server`` of the cluster."""

    def __init__(self, binary: str, directory: Path, node_timeout_ms: int) -> None:
        self.port = free_port()
        self.directory = directory / str(self.port)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._binary = binary
        self._node_timeout_ms = node_timeout_ms
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own redis-server
            [
                self._binary,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                *("--cluster-node-timeout", str(self._node_timeout_ms)),
                # A dead master stops only its own slots, as docker-compose runs it.
                *("--cluster-require-full-coverage", "no"),
                *("--save", "", "--dir", str(self.directory), "--appendonly", "no"),
                *("--daemonize", "no", "--protected-mode", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, decode_responses=True)

    def kill(self) -> None:
        """SIGKILL, as a crash: the node is gone without a word to the others."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class LocalCluster:
    """``masters`` masters with ``replicas`` replicas each, on free loopback ports."""

    def __init__(
        self,
        binary: str,
        directory: Path,
        *,
        masters: int = 3,
        replicas: int = 0,
        node_timeout_ms: int = 3000,
    ) -> None:
        self.nodes = [
            ClusterNodeProcess(binary, directory, node_timeout_ms)
            for _ in range(masters * (1 + replicas))
        ]
        self.masters_count = masters
        self.replicas = replicas
        self._cli = str(Path(binary).with_name("redis-cli"))

    @property
    def url(self) -> str:
        """``redis+cluster://`` with every node: the product's way to name a cluster."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        try:
            self._until(lambda: all(self._pings(n) for n in self.nodes), "nodes listening")
            subprocess.run(  # noqa: S603 - our own redis-cli
                [
                    self._cli,
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{n.port}" for n in self.nodes),
                    *("--cluster-replicas", str(self.replicas), "--cluster-yes"),
                ],
                check=True,
                capture_output=True,
                timeout=_READY_S,
            )
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise

    def wait_healthy(self, *, replicas: bool = True) -> None:
        """Until every live node says the cluster is ok, ``masters`` masters serve slots and
        (with replicas, unless ``replicas`` is False) each has a replica."""
        self._until(lambda: self._healthy(replicas=replicas), "cluster ok")

    def masters(self) -> list[ClusterNodeProcess]:
        return [n for n in self.nodes if n.alive and self._role(n) == "master"]

    def master_of(self, key: str) -> ClusterNodeProcess:
        """The live node serving ``key``'s slot."""
        for node in self.masters():
            with node.client() as c:
                slot = int(c.execute_command("CLUSTER", "KEYSLOT", key))
                for start, end, *owners in c.execute_command("CLUSTER", "SLOTS"):
                    if start <= slot <= end:
                        port = int(owners[0][1])
                        return next(n for n in self.nodes if n.port == port)
        raise RuntimeError(f"no live master serves {key!r}")

    def flush(self) -> None:
        """Empty every master (the replicas follow), and forget loaded scripts."""
        for node in self.masters():
            with node.client() as c:
                c.flushall()
                c.script_flush()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def _healthy(self, *, replicas: bool = True) -> bool:
        live = [n for n in self.nodes if n.alive]
        for node in live:
            try:
                with node.client() as c:
                    info = c.execute_command("CLUSTER", "INFO")
            except redis.RedisError:
                return False
            text = info if isinstance(info, str) else str(info)
            if "cluster_state:ok" not in text:
                return False
        masters = self.masters()
        if len(masters) != self.masters_count:
            return False
        if replicas and self.replicas:
            for node in masters:
                with node.client() as c:
                    role = c.execute_command("ROLE")
                if len(role[2]) < self.replicas:  # [host, port, offset] per replica
                    return False
        return True

    @staticmethod
    def _role(node: ClusterNodeProcess) -> str:
        try:
            with node.client() as c:
                return str(c.execute_command("ROLE")[0])
        except redis.RedisError:
            return "down"

    @staticmethod
    def _pings(node: ClusterNodeProcess) -> bool:
        try:
            with node.client() as c:
                return bool(c.ping())
        except redis.RedisError:
            return False

    @staticmethod
    def _until(check: object, what: str) -> None:
        deadline = time.monotonic() + _READY_S
        while time.monotonic() < deadline:
            if check():  # type: ignore[operator]
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis cluster: timed out waiting for {what}")
