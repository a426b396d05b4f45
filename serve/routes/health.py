"""Liveness: the one route that needs no key."""

from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/health")
@router.get("/health/", include_in_schema=False)
def health() -> dict:
    return {"status": "ok"}
