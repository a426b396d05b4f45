"""Main job: synthetic data -> ingest -> ... end to end, printing what it did.

    python jobs/demo.py [--entities N] [--workdir DIR] [--store URI]
    ray job submit --working-dir . -- python jobs/demo.py
"""

import sys

from dmas.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
