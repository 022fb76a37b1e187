"""The background cache warm-up, as its own process (started by
:func:`components.services.start_warm_up`; the pickled ``Settings`` arrive on stdin, so the
secret key is never on a command line or in the environment).

``python -m components.warmup < settings.pickle`` precomputes the cohort aggregates of the
current data version into the shared cache, prints the step timings as JSON and exits, handing
its peak memory back to the OS.
"""

from __future__ import annotations

import json
import logging
import pickle
import sys

from components import services
from settings import Settings


def main() -> int:
    settings = pickle.load(sys.stdin.buffer)
    if not isinstance(settings, Settings):
        sys.stderr.write(f"expected pickled Settings on stdin, got {type(settings).__name__}\n")
        return 2
    logging.basicConfig(level=settings.log_level, format="%(levelname)s warm-up: %(message)s")
    with services.bare_app(settings).app_context():
        timings = services.warm_up()
    sys.stdout.write(json.dumps({k: round(v, 2) for k, v in timings.items()} or "already warm"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
