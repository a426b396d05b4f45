"""The online view: per-entity state of the store's latest commits, in memory, for scoring the present."""

from dmas.online.view import OnlineView, ViewDepth

__all__ = ["OnlineView", "ViewDepth"]
