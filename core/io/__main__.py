"""``python -m core.io``: the command line of :mod:`core.io.cli`."""

from core.io.cli import main

raise SystemExit(main())
