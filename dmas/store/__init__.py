"""Versioned tables (Delta Lake), content-addressed blobs and audit trails."""

from dmas.store.store import Store

__all__ = ["Store"]
