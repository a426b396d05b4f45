"""The real dmas application, served on its settings' loopback host and port for a test, with a client."""

from collections.abc import Iterator
from contextlib import contextmanager

import httpx


@contextmanager
def served_app(settings, timeout: float = 120, **client_options) -> Iterator[httpx.Client]:
    """Start Serve and the application graph (`serve.app.build_app`), yield a client, shut Serve down after."""
    from ray import serve

    from serve.app import build_app

    host, port = settings.serve.host, settings.serve.port
    serve.start(http_options={"host": host, "port": port})
    try:
        serve.run(build_app(settings), name="dmas", route_prefix="/")
        with httpx.Client(base_url=f"http://{host}:{port}", timeout=timeout, **client_options) as client:
            yield client
    finally:
        serve.shutdown()
