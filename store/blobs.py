"""Where an artifact's bytes live: in its database row, or, with ARTIFACT_STORE set, in an S3-compatible object
store under a key, the row keeping the key, size, SHA-256 and step.

An object is written before the transaction that records it commits, and deleted only after the transaction
that forgets it has committed: a rollback deletes the objects it wrote, a commit deletes the objects of the
rows it deleted or replaced. A crash between the two leaves an object nobody names (`python -m
store.move_artifacts --orphans` lists and deletes them), never a row naming a missing object.
"""

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, delete, event, select
from sqlalchemy.orm import Session, SessionTransaction

from store.errors import ArtifactStoreUnavailable
from store.settings import StoreSettings
from store.tables import Artifact

log = logging.getLogger("store.blobs")
OBJECTS = "object_store"  # Session.info: the ObjectStore of this session's factory, if any
WRITTEN = "objects_written"  # Session.info: keys written in this transaction
FORGOTTEN = "objects_forgotten"  # Session.info: keys whose rows this transaction deleted
READ_CHUNK = 1024 * 1024
READ_SECONDS = 30.0  # a read of an object may take this, plus a second per MB


class ObjectMissing(LookupError):
    """A row names an object the store does not have (deleted behind the service's back)."""


@dataclass(frozen=True)
class ObjectStore:
    """An S3 bucket and a key prefix, reached through boto3 (credentials from its usual chain: the
    AWS_* variables, AWS_SHARED_CREDENTIALS_FILE, a profile, an instance role)."""

    bucket: str
    prefix: str
    client: Any  # boto3's S3 client (typed by botocore-stubs only)

    def key_for(self, job_id: int, kind: str, sha256: str) -> str:
        """One key per content: a replaced artifact gets a new key, and its old one is deleted after the commit."""
        return f"{self.prefix}jobs/{job_id}/{kind}-{sha256}"

    def put(self, key: str, data: bytes) -> None:
        with self._answering(f"writing {key}"):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    @contextmanager
    def _answering(self, what: str) -> Iterator[None]:
        """boto3's errors as ours: a missing object as ObjectMissing, anything else (no answer, refused
        credentials, a server error) as ArtifactStoreUnavailable, naming the bucket and what was asked."""
        from botocore.exceptions import BotoCoreError, ClientError  # (installed with boto3: a store has it)

        try:
            yield
        except self.client.exceptions.NoSuchKey:
            raise ObjectMissing(what) from None
        except (BotoCoreError, ClientError) as exc:
            raise ArtifactStoreUnavailable(f"the artifact store s3://{self.bucket} ({what}): {exc}") from None

    def _chunks(self, key: str, size: int, byte_range: str | None = None) -> Iterator[bytes]:
        """The object's bytes (or a range of them) a chunk at a time, at most `size` + 1 of them (one more than the
        row says it has: a longer object fails its hash check without being read whole) and for at most
        READ_SECONDS + a second per MB: a store that trickles is given up as unavailable."""
        deadline = time.monotonic() + READ_SECONDS + size / 1e6
        extra = {"Range": byte_range} if byte_range else {}
        left = size + 1
        with self._answering(f"reading {key}"):
            body = self.client.get_object(Bucket=self.bucket, Key=key, **extra)["Body"]
            try:
                while left > 0 and (chunk := body.read(min(READ_CHUNK, left))):
                    left -= len(chunk)
                    yield chunk
                    if time.monotonic() > deadline:
                        raise ArtifactStoreUnavailable(
                            f"the artifact store s3://{self.bucket} (reading {key}): slower than 1 MB/s"
                        )
            finally:
                body.close()

    def get(self, key: str, size: int) -> bytes:
        """The object, which its row says is `size` bytes (more are not read)."""
        return b"".join(self._chunks(key, size))

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        return b"".join(self._chunks(key, length, f"bytes={offset}-{offset + length - 1}"))[:length]

    def sha256(self, key: str, size: int) -> str:
        """The object's SHA-256, read as a stream (a chunk in memory at a time, `size` + 1 bytes at most)."""
        digest = hashlib.sha256()
        for chunk in self._chunks(key, size):
            digest.update(chunk)
        return digest.hexdigest()

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # S3's most per request
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            with self._answering(f"deleting {len(batch)} objects"):
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def keys(self) -> Iterator[str]:
        """Every key under the prefix."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        with self._answering(f"listing {self.prefix}"):
            for page in pages:
                for entry in page.get("Contents", ()):
                    yield entry["Key"]


def object_store_for(settings: StoreSettings) -> ObjectStore | None:
    """The settings' ARTIFACT_STORE (`s3://bucket/prefix`), or None to keep artifacts in the database."""
    if not settings.artifact_store:
        return None
    try:
        import boto3
    except ImportError:
        raise SystemExit(
            "ARTIFACT_STORE needs boto3: pip install -e '.[s3]' (make serve ARTIFACT_STORE=... installs it)"
        ) from None
    where = urlsplit(settings.artifact_store)
    prefix = where.path.strip("/")
    from botocore.config import Config

    # a store that does not answer is said so within seconds (a request waits on it), tried thrice
    patience = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"})
    client = boto3.client("s3", endpoint_url=settings.artifact_store_endpoint or None, config=patience)
    return ObjectStore(where.netloc, f"{prefix}/" if prefix else "", client)


def objects_of(session: Session) -> ObjectStore | None:
    found = session.info.get(OBJECTS)
    return found if isinstance(found, ObjectStore) else None


def required_objects(session: Session, key: str) -> ObjectStore:
    """The session's object store, for a row that names `key`: ArtifactStoreUnavailable without one."""
    objects = objects_of(session)
    if objects is None:
        raise ArtifactStoreUnavailable(
            f"the artifact {key} is in an object store, and ARTIFACT_STORE is not set in this process"
        )
    return objects


def write_object(session: Session, objects: ObjectStore, key: str, data: bytes) -> None:
    """Write the object now; deleted again if the session's transaction rolls back."""
    objects.put(key, data)
    session.info.setdefault(WRITTEN, []).append(key)


def delete_artifacts(session: Session, where: ColumnElement[bool], keeping: str | None = None) -> None:
    """Delete the artifacts rows `where` selects; their objects (but `keeping`, a key a new row names) go
    once the transaction commits. No commit."""
    keys = session.scalars(delete(Artifact).where(where).returning(Artifact.object_key)).all()
    forgotten = [key for key in keys if key is not None and key != keeping]
    if forgotten:
        session.info.setdefault(FORGOTTEN, []).extend(forgotten)


def object_keys(session: Session) -> set[str]:
    """Every key the artifacts rows name."""
    return {key for key in session.scalars(select(Artifact.object_key)) if key is not None}


def _delete_now(session: Session, keys: list[str]) -> None:
    objects = objects_of(session)
    if objects is None:
        log.warning("%d objects are no longer named, and this process has no ARTIFACT_STORE to delete them: "
                    "`python -m store.move_artifacts --orphans` deletes them", len(keys))  # fmt: skip
        return
    try:
        objects.delete(keys)
    except ArtifactStoreUnavailable as exc:  # the objects stay, named by nobody, until --orphans
        log.warning("could not delete %d objects (%s); `python -m store.move_artifacts --orphans` deletes them",
                    len(keys), exc)  # fmt: skip


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    """The commit holds: what it wrote is named now, and the objects of the rows it deleted go."""
    session.info.pop(WRITTEN, None)
    forgotten = session.info.pop(FORGOTTEN, [])
    if forgotten:
        _delete_now(session, forgotten)


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    """A transaction that ended without a commit (rolled back, or closed): nothing it wrote is named."""
    if transaction.parent is not None:  # a savepoint: its outer transaction decides
        return
    session.info.pop(FORGOTTEN, None)
    written = session.info.pop(WRITTEN, [])
    if written:
        _delete_now(session, written)
