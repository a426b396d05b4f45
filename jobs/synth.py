"""Write deterministic synthetic inputs (tables and media files).

    python jobs/synth.py --out DIR [--entities N] [--seed S]
    ray job submit --working-dir . -- python jobs/synth.py --out /shared/synth --entities 100000
"""

import sys

from dmas.cli import main

if __name__ == "__main__":
    sys.exit(main(["synth", *sys.argv[1:]]))
