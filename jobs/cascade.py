"""Cascade tiers: train small spectral proxy models on Ray Train, predict the full model's loss.

On sequence data (next-token models) or, with --store / --data-kind entities, on the store's
entities and their targets (FullModel proxies through dmas' training loop).

    python jobs/cascade.py [--data docs.parquet --column text] [--profile gpu] [--train-full] [--out DIR]
    ray job submit --working-dir . -- python jobs/cascade.py --data corpus.jsonl --out cascade
    ray job submit --working-dir . -- python jobs/cascade.py --store s3://bucket/store --out cascade  # entities

Prints progress every progress_interval_s (10 s) on stderr (the job's log), then the JSON summary;
writes cascade_report.json and cascade_timings.json into --out.
"""

import sys

from dmas.cli import main

if __name__ == "__main__":
    sys.exit(main(["cascade", *sys.argv[1:]]))
