"""A worker keeps its freed buffers: extracting the next artifact does not page-fault them in again."""

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's")

# Starts from glibc's lowest thresholds (a fresh process, or a worker that fell back to them), then
# extracts the same upload-size photo a few times and prints the minor page faults of the last ones.
_SCRIPT = """
import ctypes, io, resource, sys
import numpy as np
from PIL import Image
from dmas.features import extract_features
from dmas.features.allocator import keep_freed_memory

libc = ctypes.CDLL(None)
libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD at its start-up value
libc.mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD
if sys.argv[1] == "keep":
    assert keep_freed_memory()
pixels = np.random.default_rng(0).integers(0, 256, (1200, 1600, 3), dtype=np.uint8)
out = io.BytesIO()
Image.fromarray(pixels).save(out, format="JPEG", quality=90)
for _ in range(2):
    extract_features("image", out.getvalue())
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    extract_features("image", out.getvalue())
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


def test_extraction_reuses_its_buffers_once_the_thresholds_are_pinned():
    image_pages = 1200 * 1600 * 3 // 4096  # one decoded copy of the photo
    assert _page_faults("default") > 3 * image_pages  # the state a worker can be in: every buffer mapped anew
    assert _page_faults("keep") < image_pages // 10  # warm: the buffers are reused
