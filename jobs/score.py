"""Score every entity (or some) with a run on Ray Data and commit the rows to the `scores` table; prints a summary.

    python jobs/score.py [--run-id RUN] [--entity-ids a,b | --entities-file F | --changed-since-version JSON]
                         [--workers N] [--batch-size B] [--store URI]
    ray job submit --working-dir . -- python jobs/score.py --store s3://bucket/dmas --workers 8
"""

import sys

from dmas.cli import main

if __name__ == "__main__":
    sys.exit(main(["score", *sys.argv[1:]]))
