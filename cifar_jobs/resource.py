"""What a handle on the service's things shares: the answer it last read, and reading it again."""

from typing import Any, ClassVar, Self

from cifar_jobs.connection import Connection


class Resource:
    """A thing at `{collection}/{id}` as the service last described it (`data`, its answer)."""

    collection: ClassVar[str]

    def __init__(self, connection: Connection, data: dict[str, Any]) -> None:
        self._connection = connection
        self.data = data

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.data.get('status', '')}>"

    @property
    def id(self) -> int:
        return int(self.data["id"])

    @property
    def status(self) -> str:
        return str(self.data["status"])

    @property
    def path(self) -> str:
        return f"{self.collection}/{self.id}"

    def refresh(self) -> Self:
        self.data = self._connection.call("GET", self.path)
        return self
