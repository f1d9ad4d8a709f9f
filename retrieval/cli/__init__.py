"""The ``retrieval`` command line: thin command functions over the library, grouped by area.

Modules:
    app      build_parser and main(argv) -> exit code; ``evaluate RUN`` routing; one-line library errors.
    args     shared argument types (positive_int, unit_float, ...) and options (--set, --json).
    demo     ``demo``: the make-demo pipeline (:func:`retrieval.demo.run_demo`).
    data     ``data demo | summary | subset | import-splits``.
    train    ``train``, ``evaluate RUN``, ``compare``, ``noisy-student``, ``robustness``, ``explain``.
    search   ``index``, ``search``, ``similar``, ``tag``, ``vocab``.
    heads    ``evaluate moods``, ``evaluate artist-factors``, ``train-head``.

Building the parser imports no torch: each command imports what it uses when it runs.
"""

from retrieval.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
