"""What the store refuses, phrased for the client; `app.http.errors` maps each to an HTTP status."""


class StoreError(Exception):
    """A request that does not fit the stored state; the message says why."""


class JobNotFound(StoreError):
    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} not found (GET /jobs lists the jobs there are)")
        self.job_id = job_id


class JobFinished(StoreError):
    """The job has already finished, and the request needs a queued or running one."""


class JobNotFinished(StoreError):
    """The job is queued or running, and the request needs a finished one."""


class IdempotencyConflict(StoreError):
    """The idempotency key was used before with a different spec."""


class KeyRaced(StoreError):
    """Another transaction inserted a job with the same idempotency key first: the caller's transaction is over."""


class NoModel(StoreError):
    """The job (or every job) has no stored model to download or predict with."""


class ArtifactCorrupt(StoreError):
    """A stored file (a model, a checkpoint) whose bytes no longer match the SHA-256 stored with it."""

    def __init__(self, job_id: int, kind: str) -> None:
        super().__init__(
            f"job {job_id}'s {kind} is damaged: its bytes do not match the SHA-256 stored with it "
            "(train the job again, or delete it)"
        )
        self.job_id, self.kind = job_id, kind


class ArtifactStoreUnavailable(StoreError):
    """The object store (ARTIFACT_STORE) did not answer, refused the credentials, or is not configured in this
    process while a row names one of its objects."""


class UserExists(StoreError):
    """A user with this name exists already."""


class UserNotFound(StoreError):
    """No such user."""


class UserRemoved(StoreError):
    """The user was removed: their runs stay, nothing of theirs changes any more."""


class TokenNotFound(StoreError):
    """No such token among the user's."""


class BackupUnsupported(StoreError):
    """The database is not SQLite: its own tools back it up (the message says which)."""
