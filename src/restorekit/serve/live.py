"""The app on a real HTTP server in a background thread (for the browser test, the load test
and embedding): ``with running(settings) as base_url: ...``."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from restorekit.serve.app import Settings, create_app


@contextmanager
def running(settings: Settings, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``settings``' app on a free port of ``host``; yields its base URL; on exit the
    server shuts down as on Ctrl-C (running jobs finish)."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind((host, 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(settings), host=host, port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(60)
