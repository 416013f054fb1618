"""The HTTP endpoint a member's metrics are scraped from: one WSGI server per registry, on a
thread of its own, stopped on demand (:meth:`vnfha.metrics.MemberMetrics.serve`).

Guarantees: scrapes are not logged; a scrape in progress never delays the process's exit;
:meth:`Exporter.close` returns once the port is released (after at most about ``poll_s``).
"""

from __future__ import annotations

import socket
import socketserver
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prometheus_client import CollectorRegistry, make_wsgi_app

__all__ = ["Exporter"]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Scrapes are not logged (one line per scrape would drown the member's log)."""


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    """A scrape in progress never delays the process's exit."""


class Exporter:
    """A WSGI server for one registry, on its own thread. It is built from the standard library
    and ``make_wsgi_app`` (the exposition, content negotiation and compression), not
    ``start_http_server``, which returns no handle to stop it before prometheus-client 0.20."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int, poll_s: float) -> None:
        family, _, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        server_class = type("_Server", (_ThreadingServer,), {"address_family": family})
        self._httpd: WSGIServer = server_class((address[0], port), _QuietHandler)
        self._httpd.set_app(make_wsgi_app(registry))
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(poll_s,),
                                        name=f"vnfha-metrics-{self.port}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port; returns once the server thread has ended."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
