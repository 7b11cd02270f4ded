"""A real two-node Ray cluster on loopback for the tests and benchmarks, with token authentication.

Ray advertises the machine's network address even when asked for 127.0.0.1, so callers run inside a
private network namespace (`make test-ray`: `unshare --net`, then `ip link set lo up`), where loopback
is the only address. Each node is `ray start --block` in its own process group, stopped by that group.
"""

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness.net import free_port
from harness.processes import stop_processes

RAY = str(Path(sys.executable).with_name("ray"))


def only_loopback() -> bool:
    """True inside a network namespace whose only interface with an address is lo."""
    shown = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True, check=False).stdout
    return all(line.split()[1] == "lo" for line in shown.splitlines() if line.strip())


@dataclass
class RayCluster:
    address: str  # the dashboard, for the Jobs API
    token: str
    temp_dir: Path
    nodes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token, "RAY_ADDRESS": self.address}

    def _get(self, path: str) -> Any:
        answer = httpx.get(f"{self.address}{path}", headers={"Authorization": f"Bearer {self.token}"}, timeout=10)
        answer.raise_for_status()
        return answer.json()

    def submissions(self) -> dict[str, dict[str, Any]]:
        """Every Ray job by submission id (the Jobs REST API: no Ray client state in this process)."""
        return {job["submission_id"]: job for job in self._get("/api/jobs/") if job.get("submission_id")}

    def gpu_node_ids(self) -> list[str]:
        summary = self._get("/nodes?view=summary")["data"]["summary"]
        return [node["raylet"]["nodeId"] for node in summary if node["raylet"]["resourcesTotal"].get("GPU")]

    def stop(self, grace_seconds: float = 5) -> None:
        """SIGTERM to each node's process group, SIGKILL to what is left after `grace_seconds` (a head told to
        stop can take over 30 s to close its dashboard; the cluster is thrown away, so nothing is lost)."""
        stop_processes(list(reversed(self.nodes)), grace_seconds, report_slow=False)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def start_ray_cluster(
    head_cpus: int = 2, worker_cpus: int = 1, worker_gpus: int = 1, log: Path | None = None
) -> RayCluster:
    """A head (CPUs, no GPU) and a second node (`worker_gpus` GPUs: Ray only counts them, none needed)."""
    token = secrets.token_hex(16)
    temp_dir = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))  # short: Ray's socket paths have a length limit
    gcs_port, dashboard_port = free_port(), free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "RAY_USAGE_STATS_ENABLED": "0"}
    cluster = RayCluster(f"http://127.0.0.1:{dashboard_port}", token, temp_dir)
    common = ["--block", "--node-ip-address", "127.0.0.1", "--temp-dir", str(temp_dir), "--disable-usage-stats"]
    log_path = log or temp_dir / "ray.log"
    head = [RAY, "start", "--head", "--port", str(gcs_port), "--dashboard-host", "127.0.0.1", "--dashboard-port",
            str(dashboard_port), "--dashboard-agent-listen-port", str(free_port()), "--num-cpus", str(head_cpus),
            "--num-gpus", "0", *common]  # fmt: skip
    with log_path.open("ab") as out:  # each node keeps its own copy of the file
        cluster.nodes.append(
            subprocess.Popen(head, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        )
    try:
        _wait_for_nodes(cluster, 1)
        second = [RAY, "start", "--address", f"127.0.0.1:{gcs_port}", "--dashboard-agent-listen-port",
                  str(free_port()), "--num-cpus", str(worker_cpus), "--num-gpus", str(worker_gpus),
                  *common]  # fmt: skip
        with log_path.open("ab") as out:
            cluster.nodes.append(
                subprocess.Popen(second, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            )
        _wait_for_nodes(cluster, 2)
    except Exception:
        cluster.stop()
        raise
    return cluster


def _wait_for_nodes(cluster: RayCluster, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {cluster.token}"}
    while time.monotonic() < deadline:
        if any(node.poll() is not None for node in cluster.nodes):
            raise RuntimeError(f"a Ray node exited; see {cluster.temp_dir}")
        try:
            answer = httpx.get(f"{cluster.address}/nodes?view=summary", headers=headers, timeout=5)
            if answer.status_code == 200:
                summary = answer.json()["data"]["summary"]
                if sum(1 for node in summary if node["raylet"]["state"] == "ALIVE") >= count:
                    return
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the Ray cluster did not reach {count} nodes")
