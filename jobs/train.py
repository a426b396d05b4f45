"""Train the multimodal model on the current snapshot with Ray Train; prints the run.

    python jobs/train.py [--train-config configs/train.yaml] [--workers N] [--store URI]
    ray job submit --working-dir . -- python jobs/train.py --train-config configs/train.yaml
"""

import sys

from dmas.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
