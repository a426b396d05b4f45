"""Error types with messages a user can act on.

The CLI maps every `DmasError` to exit code 2 with its message, and the HTTP layer maps the same
types to status codes, each in one place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


class DmasError(Exception):
    """Base class of every error dmas raises on purpose.

    Errors cross Ray processes (a deployment or task raises, the HTTP layer answers), so every
    subclass pickles as its class, message and attributes, whatever its constructor takes: the
    default pickling calls `cls(*args)`, which breaks for constructors with other parameters.
    """

    def __reduce__(self):
        return _rebuild_error, (type(self), self.args, self.__dict__)


def _rebuild_error(cls: type[DmasError], args: tuple, state: dict) -> DmasError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ConfigError(DmasError):
    """A setting is invalid; the message names the field."""


class StoreError(DmasError):
    """The store cannot do what was asked (unknown table, missing version, conflicting commit)."""


class ConflictError(StoreError):
    """Concurrent writers kept winning the commit; nothing of this request was written (HTTP 409: send it again)."""


class NotFoundError(StoreError):
    """A named thing (run, job) does not exist; HTTP answers 404."""


class UnreadableFileError(DmasError):
    """A whole input file cannot be parsed; nothing was written."""

    def __init__(self, file: str, reason: str):
        super().__init__(f"{file}: cannot be read: {reason}")
        self.file = file
        self.reason = reason


class LimitExceededError(DmasError):
    """An input is larger than a configured limit (upload size, image pixels, ...)."""


class UnsafePathError(DmasError):
    """A user-supplied path would leave its base folder."""


@dataclass(frozen=True)
class RowError:
    """One bad input row, numbered as the user sees it in the source file."""

    row: int
    field: str | None
    error: str

    def to_dict(self) -> dict:
        return asdict(self)


class IngestError(DmasError):
    """A row was rejected in strict mode; names the file, row, field and value."""

    def __init__(self, file: str, row_error: RowError):
        where = f"{file}, row {row_error.row}"
        if row_error.field:
            where += f", field '{row_error.field}'"
        super().__init__(f"{where}: {row_error.error}")
        self.file = file
        self.row_error = row_error
