"""The result of one ingest, in the shape users and the HTTP API see."""

from __future__ import annotations

from dataclasses import dataclass, field

from dmas.errors import RowError


@dataclass
class IngestReport:
    """Counts and the first `max_errors` row errors (all are counted in `failed_rows`).

    Each reported error comes twice: structured in `errors` for programs, and as the one line the
    original platform's clients print in `error_messages` (same order, same cap).
    """

    file: str
    table: str
    max_errors: int = 100
    total_rows: int = 0
    success_rows: int = 0
    inserted_rows: int = 0
    updated_rows: int = 0
    version: int | None = None
    _failed: set[int] = field(default_factory=set)
    _errors: list[RowError] = field(default_factory=list)
    _error_count: int = 0

    def add_errors(self, errors: list[RowError]) -> None:
        for error in errors:
            self._failed.add(error.row)
            self._error_count += 1
            if len(self._errors) < self.max_errors:
                self._errors.append(error)

    @property
    def failed_rows(self) -> int:
        return len(self._failed)

    def to_dict(self) -> dict:
        errors = sorted(self._errors, key=lambda e: e.row)
        return {
            "file": self.file,
            "table": self.table,
            "total_rows": self.total_rows,
            "success_rows": self.success_rows,
            "failed_rows": self.failed_rows,
            "inserted_rows": self.inserted_rows,
            "updated_rows": self.updated_rows,
            "unchanged_rows": self.success_rows - self.inserted_rows - self.updated_rows,
            "version": self.version,
            "error_count": self._error_count,
            "errors_truncated": self._error_count > len(self._errors),
            "errors": [error.to_dict() for error in errors],
            "error_messages": [error_message(error) for error in errors],
        }


def error_message(error: RowError) -> str:
    """One row error as a line: 'row 5, attributes: not valid JSON ...' (no field: 'row 5: ...')."""
    where = f"row {error.row}, {error.field}" if error.field else f"row {error.row}"
    return f"{where}: {error.error}"
