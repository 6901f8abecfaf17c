"""One small error hierarchy. User errors print one line and exit with their code; no traceback
unless ``--debug``."""

from __future__ import annotations


class DistillcError(Exception):
    """An error the user can act on: printed as one line, exit code ``exit_code``."""

    exit_code = 1

    def line(self) -> str:
        return str(self)


class RecipeError(DistillcError):
    """A recipe problem, located by file, line and dotted path."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 path: str | None = None):
        self.message, self.file, self.lineno, self.path = message, file, line, path
        super().__init__(self.line())

    def line(self) -> str:
        where = self.file or "<recipe>"
        if self.lineno is not None:
            where += f":{self.lineno}"
        if self.path:
            where += f" {self.path}"
        return f"{where}: {self.message}"


class SourceError(DistillcError):
    """A task source cannot be read (missing file, bad rows, unknown dataset)."""


class StoreError(DistillcError):
    """The store is missing, locked, or does not hold what was asked for (unknown corpus/version)."""


class BackendError(DistillcError):
    """An LLM backend cannot be constructed or reached."""


class MissingDependency(DistillcError):
    """An optional dependency is not installed; the message carries the install command."""


class BudgetExceeded(DistillcError):
    """The recipe's or the command line's budget was reached: nothing new is admitted."""

    exit_code = 3


class StageIncomplete(DistillcError):
    """Some LLM requests of a stage failed for now (connection, timeout, rate limit, 5xx) after all
    retries: the stage is not saved, the answers received are cached, and compiling again retries
    only the failed requests."""

    exit_code = 4


class UsageError(DistillcError):
    """Bad command-line usage."""
