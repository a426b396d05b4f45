"""Validate a file and commit it to the store: entities | events | interactions | artifacts | artifact.

    python jobs/ingest.py events data/events.csv [--strict] [--store URI]
    ray job submit --working-dir . -- python jobs/ingest.py artifacts data/artifacts.csv --store s3://bucket/dmas
"""

import sys

from dmas.cli import main

if __name__ == "__main__":
    sys.exit(main(["ingest", *sys.argv[1:]]))
