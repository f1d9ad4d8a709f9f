"""``python -m retrieval`` runs the command-line interface."""

import sys

from retrieval.cli import main

sys.exit(main())
