"""distillc view: a local, read-only web app over the store (corpora, rows, one example's lineage).

The port is bound here, before the server starts, so a port in use is one line and exit 1; uvicorn
is then handed the bound socket. ``--check`` renders the index once through the app and exits,
without binding or serving (a smoke test of the store and the pages).
"""

from __future__ import annotations

import argparse
import errno
import socket

from compiler.commands.common import add_store, store_path
from compiler.errors import StoreError, UsageError

NAME = "view"
HELP = "browse corpora, rows and each example's lineage in a local read-only web app"
EXAMPLE = "distillc view --check"
DEFAULT_PORT = 8765


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"the port to serve on (default {DEFAULT_PORT})")
    p.add_argument("--host", default="127.0.0.1", help="the address to serve on (default 127.0.0.1: this machine only)")
    p.add_argument("--check", action="store_true",
                   help="render the index page once and exit, without serving (checks the store and the pages)")
    add_store(p)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or one line naming the port when it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {host} is in use: pass --port") from None
        raise UsageError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def check_store(path: str) -> None:
    """The store must exist and be readable; a compile holding it is fine (pages retry)."""
    from compiler.store.db import Store

    try:
        Store.open_readonly(path).close()
    except StoreError as exc:
        if "in use" not in str(exc):
            raise


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from compiler.viewer.app import create_app

    path = store_path(args)
    check_store(path)
    app = create_app(path)
    url = f"http://{args.host}:{args.port}/"
    if args.check:
        return _check(app, url)
    sock = bind(args.host, args.port)
    print(f"distillc view: serving {path} (read-only) on {url}  (Ctrl-C stops)", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    server.run(sockets=[sock])
    return 0


def _check(app, url: str) -> int:
    from starlette.testclient import TestClient

    with TestClient(app) as client:
        page = client.get("/")
    if page.status_code != 200:
        raise StoreError(f"the index page answered {page.status_code}")
    print(f"distillc view: the index renders; `distillc view` without --check serves it on {url}")
    return 0
