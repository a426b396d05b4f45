"""Remove an entity from every table and its unshared blobs, with an audit record.

    python jobs/forget.py ENTITY_ID [--purge] [--store URI]
"""

import sys

from dmas.cli import main

if __name__ == "__main__":
    sys.exit(main(["forget", *sys.argv[1:]]))
