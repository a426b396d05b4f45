"""The HTTP API's routes, one module per area; `serve.api` includes every router listed here."""

from serve.routes import cascade, health, jobs, quality, runs, scoring, store

ROUTERS = (health.router, runs.router, scoring.router, jobs.router, quality.router, cascade.router,
           store.router)
