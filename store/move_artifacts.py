"""Move the artifacts a database holds into the object store ARTIFACT_STORE names, one per transaction, while the
service runs; `--orphans` deletes the objects under the prefix that no row names (left by a crash between an
object's write and its transaction's end, or by a store that was unreachable at a delete).

    DATABASE_URL=... ARTIFACT_STORE=s3://bucket/prefix python -m store.move_artifacts [--orphans]
"""

import argparse
import logging
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from store.blobs import ObjectStore, object_keys, object_store_for, write_object
from store.engine import session_factory_for
from store.migrate import upgrade
from store.settings import StoreSettings
from store.tables import Artifact
from store.unit_of_work import unit_of_work

log = logging.getLogger("store.move_artifacts")


@dataclass(frozen=True)
class Moved:
    artifacts: int
    bytes: int


def move_artifacts(sessions: sessionmaker[Session], objects: ObjectStore) -> Moved:
    """Each artifact whose bytes are in its row: its object written, then the row pointed at it and its bytes
    dropped, in one transaction (a row replaced meanwhile keeps its new artifact; the object written for the
    old one is deleted with the rollback)."""
    moved = Moved(0, 0)
    while True:
        try:
            with unit_of_work(sessions) as session:
                row = session.execute(
                    select(Artifact.id, Artifact.job_id, Artifact.kind, Artifact.sha256, Artifact.data)
                    .where(Artifact.object_key.is_(None))
                    .order_by(Artifact.id)
                    .limit(1)
                ).first()
                if row is None:
                    return moved
                key = objects.key_for(row.job_id, row.kind, row.sha256)
                write_object(session, objects, key, bytes(row.data))
                pointed = session.execute(
                    update(Artifact)
                    .where(Artifact.id == row.id, Artifact.sha256 == row.sha256)
                    .values(data=None, object_key=key)
                    .returning(Artifact.id)
                    .execution_options(synchronize_session=False)
                ).first()
                if pointed is None:
                    raise _Replaced  # the rollback deletes the object written for it
        except _Replaced:
            continue
        moved = Moved(moved.artifacts + 1, moved.bytes + len(row.data))


class _Replaced(Exception):
    """The row was replaced or deleted between its read and its update: the next one."""


def delete_orphans(sessions: sessionmaker[Session], objects: ObjectStore) -> int:
    """Delete the objects under the prefix no row names; how many. The keys are listed first, then the rows
    read: an object written meanwhile for a transaction still open is not in the listing."""
    listed = list(objects.keys())
    with sessions() as session:
        named = object_keys(session)
    orphans = [key for key in listed if key not in named]
    objects.delete(orphans)
    return len(orphans)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orphans", action="store_true", help="delete the objects no artifact names instead")
    args = parser.parse_args()
    settings = StoreSettings()
    objects = object_store_for(settings)
    if objects is None:
        raise SystemExit("set ARTIFACT_STORE=s3://bucket/prefix (and ARTIFACT_STORE_ENDPOINT for a store not Amazon's)")
    engine, sessions = session_factory_for(settings)
    upgrade(engine)  # the object_key column first
    try:
        if args.orphans:
            print(f"deleted {delete_orphans(sessions, objects)} objects no artifact names")
        else:
            moved = move_artifacts(sessions, objects)
            print(f"moved {moved.artifacts} artifacts ({moved.bytes / 1e6:.1f} MB) to {settings.artifact_store}")
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
