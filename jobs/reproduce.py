"""Retrain a run from its pinned data and report whether the model and test predictions are identical.

    python jobs/reproduce.py RUN_ID [--store URI]
    ray job submit --working-dir . -- python jobs/reproduce.py RUN_ID
"""

import sys

from dmas.cli import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", *sys.argv[1:]]))
