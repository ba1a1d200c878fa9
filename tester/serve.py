"""``raftlab serve [DIR]``: browse a run store over HTTP, runs coloured by verdict.

Binds 127.0.0.1 by default (the store holds histories and logs: share it deliberately with
``--host``). ``/`` is an index of every run under DIR, newest first, built on each request so
new runs show up; everything else is served as files (reports, histories, node logs).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import sys
import threading
from pathlib import Path
from typing import Any

from checker.verdict import EXIT_BAD_INPUT
from tester.report import RunSummary, esc, find_runs, render_index, summarize


def campaign_indexes(store: Path) -> list[Path]:
    """Campaign index pages under ``<store>/campaigns/``, newest first."""
    root = store / "campaigns"
    if not root.is_dir():
        return []
    return sorted(root.glob("*/*/index.html"), key=lambda p: p.parent.name, reverse=True)


_summaries: dict[Path, tuple[float, RunSummary]] = {}
_summaries_lock = threading.Lock()


def cached_summary(run: Path) -> RunSummary:
    """A run's index line, re-read only when its results.json changes (they can be large)."""
    try:
        stamp = max((run / n).stat().st_mtime for n in ("results.json", "test.json", "report.html")
                    if (run / n).exists())
    except ValueError:
        stamp = 0.0
    with _summaries_lock:
        hit = _summaries.get(run)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    summary = summarize(run)
    with _summaries_lock:
        _summaries[run] = (stamp, summary)
    return summary


def index_page(store: Path) -> str:
    """The store's index: campaigns, then every run coloured by verdict."""
    camps = campaign_indexes(store)
    extra = ""
    if camps:
        links = " · ".join(
            f"<a href=\"{esc(os.path.relpath(p, store).replace(os.sep, '/'))}\">"
            f"{esc(p.parent.parent.name)} {esc(p.parent.name)}</a>" for p in camps[:50])
        extra = f"<p><b>Campaigns:</b> {links}</p>"
    runs = [cached_summary(d) for d in find_runs(store)]
    return render_index(f"raftlab runs in {store}", runs, store, extra)


class _Handler(http.server.SimpleHTTPRequestHandler):
    store: Path

    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".jsonl": "text/plain; charset=utf-8",
        ".log": "text/plain; charset=utf-8",
        ".json": "application/json; charset=utf-8",
        ".edn": "text/plain; charset=utf-8",
    }

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.split("?", 1)[0] in ("/", "/index.html") and not (
            self.store / "index.html"
        ).exists():
            body = index_page(self.store).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # quiet: a browser fetches many files


def make_server(store: str | os.PathLike[str], host: str = "127.0.0.1",
                port: int = 8080) -> http.server.ThreadingHTTPServer:
    """An HTTP server for ``store`` (port 0 picks a free port); call ``serve_forever``."""
    root = Path(store).resolve()
    handler = type("StoreHandler", (_Handler,), {"store": root})
    return http.server.ThreadingHTTPServer(
        (host, port), functools.partial(handler, directory=str(root)))


def serve_in_thread(store: str | os.PathLike[str], host: str = "127.0.0.1",
                    port: int = 0) -> tuple[http.server.ThreadingHTTPServer, threading.Thread]:
    """Start serving in a daemon thread (for tests and embedding); ``shutdown()`` stops it."""
    srv = make_server(store, host, port)
    t = threading.Thread(target=srv.serve_forever, name="raftlab-serve", daemon=True)
    t.start()
    return srv, t


def port_number(text: str) -> int:
    """A TCP port 0-65535, for argparse (which then exits 254 naming the option)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number 0-65535")
    return port


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="browse the run store over HTTP (runs coloured by verdict)",
        description="Serve DIR (default: reports) over HTTP with an index of every run.",
    )
    p.add_argument("dir", nargs="?", default="reports", metavar="DIR")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port_number, default=8080,
                   help="port (default 8080; 0 = any free)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    store = Path(args.dir)
    if not store.is_dir():
        print(f"raftlab serve: {args.dir}: no such directory", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        srv = make_server(store, args.host, args.port)
    except OSError as e:
        print(f"raftlab serve: cannot listen on {args.host}:{args.port}: {e.strerror or e}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    host, port = srv.server_address[:2]
    print(f"serving {store.resolve()} at http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    return 0
