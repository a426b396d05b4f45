"""Extract features of every artifact that has none at the current feature version, with Ray Data.

    python jobs/features.py [--concurrency N] [--batch-size B] [--store URI]
    ray job submit --working-dir . -- python jobs/features.py --store s3://bucket/dmas
"""

import sys

from dmas.cli import main

if __name__ == "__main__":
    sys.exit(main(["features", *sys.argv[1:]]))
