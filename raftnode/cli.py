"""The ``raftnode`` command: ``serve`` a node, talk to one as a ``client``, build the ``zipapp``.

Exit codes follow raftlab's: 0 ok, 1 definite failure, 2 unknown outcome, 254 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from raftnode.types import UNSAFE_SWITCHES
from raftnode.wire import KEY_OPS, VALUE_OPS, parse_addr

EXIT_OK, EXIT_FAIL, EXIT_UNKNOWN, EXIT_BAD_ARGS = 0, 1, 2, 254
STATUS_EXIT = {"ok": EXIT_OK, "fail": EXIT_FAIL, "unknown": EXIT_UNKNOWN}


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad arguments; 2 means 'unknown outcome' here, so use 254."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_ARGS, f"{self.prog}: error: {message}\n")


def _addr(v: str) -> str:
    try:
        parse_addr(v)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return v


def parse_peers(v: str) -> dict[str, str]:
    """``n1=h:p,n2=h:p`` -> {id: addr}; errors name the offending item."""
    peers: dict[str, str] = {}
    for item in v.split(","):
        item = item.strip()
        if not item:
            continue
        node, sep, addr = item.partition("=")
        if not sep or not node:
            raise argparse.ArgumentTypeError(f"peer {item!r} is not ID=HOST:PORT")
        try:
            parse_addr(addr)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"peer {node}: {e}") from None
        if node in peers:
            raise argparse.ArgumentTypeError(f"peer {node} listed twice")
        peers[node] = addr
    if not peers:
        raise argparse.ArgumentTypeError("no peers given")
    return peers


def _range_ms(v: str) -> tuple[int, int]:
    lo, sep, hi = v.partition("-")
    try:
        a, b = int(lo), int(hi if sep else lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a range of milliseconds like 150-300: {v!r}") from None
    if not 0 < a <= b:
        raise argparse.ArgumentTypeError(f"bad range {v!r}: need 0 < LO <= HI")
    return a, b


def _positive(v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {v!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {v!r}")
    return n


def _json_value(v: str) -> Any:
    """A JSON value; a bare word that is not JSON is taken as a string."""
    try:
        return json.loads(v)
    except ValueError:
        return v


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="raftnode", description="A Raft key-value store (docs/raftnode.md).")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser, required=True)

    s = sub.add_parser("serve", help="run a node")
    s.add_argument("--id", required=True, help="this node's id")
    s.add_argument("--listen", required=True, type=_addr, help="HOST:PORT for clients and peers")
    s.add_argument("--peers", required=True, type=parse_peers, help="ID=HOST:PORT,... (itself included)")
    s.add_argument("--data-dir", required=True, help="log, hard state and snapshots")
    s.add_argument("--secret-file", help="file holding the cluster HMAC secret")
    s.add_argument("--unsafe", action="append", default=[], choices=UNSAFE_SWITCHES, metavar="NAME",
                   help=f"unsafe switch (repeatable): {', '.join(UNSAFE_SWITCHES)}")
    s.add_argument("--log-file", help="structured JSON log lines (default: stderr)")
    s.add_argument("--pid-file", help="write the pid here")
    s.add_argument("--join", action="store_true", help="a new server waiting to be added")
    s.add_argument("--tick-ms", type=_positive, default=10)
    s.add_argument("--election-timeout-ms", type=_range_ms, default=(150, 300))
    s.add_argument("--heartbeat-ms", type=_positive, default=50)
    s.add_argument("--snapshot-entries", type=_positive, default=10000)
    s.add_argument("--request-timeout-ms", type=_positive, default=5000)
    s.add_argument("--lease-reads", action="store_true",
                   help="serve reads from a leader lease (bounded for 20%% clock drift)")
    s.set_defaults(func=_serve)

    c = sub.add_parser("client", help="send one request and print the response as JSON")
    c.add_argument("--addr", required=True, type=_addr, help="HOST:PORT of any node")
    c.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the answer")
    c.add_argument("--client", help="session client id (for exactly-once retries)")
    c.add_argument("--seq", type=int, help="session sequence number")
    ops = c.add_subparsers(dest="op", metavar="OP", parser_class=_Parser, required=True)
    ops.add_parser("get").add_argument("key")
    o = ops.add_parser("put")
    o.add_argument("key")
    o.add_argument("value", type=_json_value)
    o = ops.add_parser("cas")
    o.add_argument("key")
    o.add_argument("expected", type=_json_value)
    o.add_argument("value", type=_json_value)
    ops.add_parser("delete").add_argument("key")
    o = ops.add_parser("append", help="add VALUE at the end of KEY's list")
    o.add_argument("key")
    o.add_argument("value", type=_json_value)
    ops.add_parser("status")
    o = ops.add_parser("add-member")
    o.add_argument("--id", dest="member", required=True)
    o.add_argument("--addr", dest="member_addr", required=True, type=_addr)
    o = ops.add_parser("remove-member")
    o.add_argument("--id", dest="member", required=True)
    c.set_defaults(func=_client)

    z = sub.add_parser("zipapp", help="build the single-file zipapp")
    z.add_argument("--out", required=True, help="where to write it")
    z.set_defaults(func=_zipapp)
    return p


def _serve(args: argparse.Namespace) -> int:
    from raftnode.server import NodeConfig, run

    if args.id not in args.peers and not args.join:
        print(f"raftnode serve: error: --id {args.id} is not in --peers (use --join for a new server)",
              file=sys.stderr)
        return EXIT_BAD_ARGS
    secret = None
    if args.secret_file:
        try:
            with open(args.secret_file, "rb") as f:
                secret = f.read().strip()
        except OSError as e:
            print(f"raftnode serve: error: --secret-file {args.secret_file}: {e.strerror}", file=sys.stderr)
            return EXIT_BAD_ARGS
        if not secret:
            print(f"raftnode serve: error: --secret-file {args.secret_file} is empty", file=sys.stderr)
            return EXIT_BAD_ARGS
    cfg = NodeConfig(
        id=args.id,
        listen=args.listen,
        peers=args.peers,
        data_dir=args.data_dir,
        secret=secret,
        unsafe=frozenset(args.unsafe),
        log_file=args.log_file,
        pid_file=args.pid_file,
        join=args.join,
        tick_ms=args.tick_ms,
        election_timeout_ms=args.election_timeout_ms,
        heartbeat_ms=args.heartbeat_ms,
        snapshot_entries=args.snapshot_entries,
        request_timeout_ms=args.request_timeout_ms,
        lease_reads=args.lease_reads,
    )
    return run(cfg)


def _client(args: argparse.Namespace) -> int:
    from raftnode.client import Client

    fields: dict[str, Any] = {}
    if args.op in KEY_OPS:
        fields["key"] = args.key
    if args.op in VALUE_OPS:
        fields["value"] = args.value
    if args.op == "cas":
        fields["expected"] = args.expected
    if args.op in ("add-member", "remove-member"):
        fields["key"] = args.member
    if args.op == "add-member":
        fields["value"] = args.member_addr
    if (args.client is None) != (args.seq is None):
        print("raftnode client: error: --client and --seq go together", file=sys.stderr)
        return EXIT_BAD_ARGS
    if args.client is not None:
        fields["client"], fields["seq"] = args.client, args.seq
    with Client(args.addr, timeout=args.timeout) as cl:
        resp = cl.request(args.op, **fields)
    print(json.dumps(resp))
    return STATUS_EXIT.get(resp.get("status"), EXIT_UNKNOWN)


def _zipapp(args: argparse.Namespace) -> int:
    from raftnode.zipapp import build

    print(build(args.out))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
