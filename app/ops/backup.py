"""/backup: the whole database as one consistent SQLite file, while jobs train (admins)."""

import tempfile
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from app.access.auth import audit
from app.access.permissions import ADMINS
from app.http.deps import SessionFactoryDep, UnitOfWorkDep
from app.http.errors import error_responses
from store.backup import backup_sqlite

router = APIRouter(tags=["admin"], dependencies=[ADMINS])


@router.get(
    "/backup",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/vnd.sqlite3": {}}, "description": "The database as a SQLite file."},
        **error_responses({409: "The database is PostgreSQL: the message says how pg_dump backs it up."}),
    },
)
def backup(request: Request, sessions: SessionFactoryDep, session: UnitOfWorkDep) -> FileResponse:
    """Every job, curve, log, checkpoint, model, user, sweep and webhook as they were at one moment, as a SQLite file
    (SQLite's online backup: the workers go on writing meanwhile). Restore: stop the service, put the file where
    DATABASE_URL points (deleting the old file's `-wal` and `-shm` beside it), start it (README, "Backups")."""
    folder = Path(request.app.state.settings.data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".backup-", suffix=".db", delete=False) as file:
        target = Path(file.name)
    try:
        size = backup_sqlite(sessions, target)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    audit(request, session, "database.backup", "database", {"bytes": size})
    return FileResponse(target, media_type="application/vnd.sqlite3", filename="cifar-jobs-backup.db",
                        background=BackgroundTask(target.unlink, missing_ok=True))  # fmt: skip
