"""`python -m explorer`, and the entry point of the standalone bundle (explorer.spec).

`--bundle-check OUT.json [--train-options OPTIONS.json]` as the first argument runs the checks of
`explorer.bundle_check` instead of the window (used by tests/test_dist.py on the built app).
"""

from __future__ import annotations

import multiprocessing
import sys


def main() -> int:
    # First of all: in a bundle, the training child process is this executable started again with
    # --multiprocessing-fork; freeze_support runs the child's work and exits.
    multiprocessing.freeze_support()
    if len(sys.argv) > 1 and sys.argv[1] == "--bundle-check":
        from explorer.bundle_check import main as bundle_check

        return bundle_check(sys.argv[2:])
    from explorer.app import main as app_main

    return app_main()


if __name__ == "__main__":
    sys.exit(main())
