"""Errors of a collapse check, in the original engine's categories, each saying whether a retry can help.

1xxx data (the inputs cannot be compared as given), 2xxx model (a probe or classifier could not be
fitted), 3xxx resource (memory, size limits), 4xxx timeout, 5xxx internal (a bug: report it). The
same code, message and `retryable` flag reach the HTTP answer, the job record and the CLI's exit code
(10 + the category's first digit: 11 data ... 15 internal).
"""

from __future__ import annotations

from dmas.errors import DmasError

CATEGORIES = {1: "data", 2: "model", 3: "resource", 4: "timeout", 5: "internal"}


class QualityError(DmasError):
    """A collapse check that could not run; `code` (1001..5999) says which kind, `retryable` whether to retry."""

    def __init__(self, code: int, message: str, *, retryable: bool = False):
        if code // 1000 not in CATEGORIES:
            raise ValueError(f"error code {code} is in no category (1xxx..5xxx)")
        super().__init__(f"[{code} {CATEGORIES[code // 1000]}] {message}")
        self.code = code
        self.message = message
        self.retryable = retryable

    @property
    def category(self) -> str:
        return CATEGORIES[self.code // 1000]

    @property
    def exit_code(self) -> int:
        return 10 + self.code // 1000

    def as_dict(self) -> dict:
        return {"code": self.code, "category": self.category, "message": self.message, "retryable": self.retryable}


# the codes dmas raises (a table, so the CLI's help, the docs and the tests name the same ones)
UNREADABLE_INPUT = 1001  # a file, URI or store table could not be read
NOTHING_TO_COMPARE = 1002  # no column is shared with the same kind, or a side has no rows
BAD_COLUMN = 1003  # the target, order or an override names a column that is missing or of the wrong kind
BAD_SETTING = 1004  # a setting of the check itself (an unknown dimension name, say)
PROBE_FAILED = 2001  # a dimension's model could not be fitted (e.g. the target has one value)
OUT_OF_MEMORY = 3001
TOO_LARGE = 3002  # an upload or table over the configured limit
TIMED_OUT = 4001
INTERNAL = 5001
