"""``serve``: the local web app over an index (:mod:`retrieval.web`)."""

from __future__ import annotations

import argparse
import sys

from retrieval.cli.args import Commands, positive_int

DEFAULT_RETRIEVER = "the demo retriever ($RETRIEVAL_HOME/demo/index, after `make demo`)"


def _serve(args: argparse.Namespace) -> int:
    from retrieval.api import load
    from retrieval.errors import RetrievalError

    try:
        from retrieval.web import serve
    except ImportError as error:
        raise RetrievalError(f"`retrieval serve` needs the web extra ({error.name} is missing): "
                             "pip install 'retrieval[web]'") from error
    retriever = load(args.index or args.model)
    where = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{args.port}/"
    print(f"serving {len(retriever.index) if retriever.index is not None else 0} tracks on {where} "
          "(Ctrl-C stops)", file=sys.stderr)
    serve(retriever, host=args.host, port=args.port, max_upload_bytes=args.max_upload_mb * 2**20)
    return 0


def add_commands(commands: Commands) -> None:
    """Add ``serve``."""
    from retrieval.web.app import DEFAULT_HOST, DEFAULT_PORT, MAX_UPLOAD_BYTES

    serve = commands.add_parser("serve", help="a local web app: search, listen, query by a file, the catalogue map",
                                description="Serve a web page and a JSON API over an index; with neither --index "
                                            f"nor --model, {DEFAULT_RETRIEVER}.")
    source = serve.add_mutually_exclusive_group()
    source.add_argument("--index", default=None, help="index folder (or a run folder with an index) to serve")
    source.add_argument("--model", default=None, help="a run folder whose RUN/index to serve")
    serve.add_argument("--host", default=DEFAULT_HOST,
                       help="address to bind (default %(default)s: this machine only; 0.0.0.0 exposes it)")
    serve.add_argument("--port", type=positive_int, default=DEFAULT_PORT, help="port (default %(default)s)")
    serve.add_argument("--max-upload-mb", type=positive_int, default=MAX_UPLOAD_BYTES // 2**20,
                       help="largest audio file a query may upload, MiB (default %(default)s)")
    serve.set_defaults(func=_serve)
