"""The peak memory one huge upload costs: predicting and explaining a 79 MP PNG (just under
:data:`skinlab.data.images.MAX_PIXELS`), measured in a fresh child process.

The child loads the run and warms it on a small image first; its ``VmHWM`` then is the idle
app's. It predicts and explains the huge upload as the Predict page does (decode, predict,
Grad-CAM, overlay) and reads ``VmHWM`` again: the difference is what one upload costs. Read
from the child's own ``/proc/self/status``: its ``ru_maxrss`` would start from the parent's.

Example::

    idle_mb, peak_mb = upload_peak_mb(run_paths, workdir)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

from skinlab.core.paths import PROJECT_ROOT

#: 8900 x 8900 = 79.2 MP, the size the attack used.
SIDE = 8900
#: What one upload may add to the idle app's peak.
TARGET_MB = 1536

_SCRIPT = """
import re, sys
from skinlab.predict.explain import explain
from skinlab.predict.predictor import load_predictor

def hwm_kb():
    with open("/proc/self/status") as status:
        return int(re.search(r"VmHWM:\\s+(\\d+)", status.read()).group(1))

predictor = load_predictor(sys.argv[1])
small = predictor.predict_sources([("small.png", sys.argv[3])])[0]
explain(predictor, sys.argv[3], small.top_class)
idle = hwm_kb()
with open(sys.argv[2], "rb") as upload:
    data = upload.read()
result = predictor.predict_sources([("huge.png", data)])[0]
explain(predictor, data, result.top_class)
print("idle_kB:", idle, "peak_kB:", hwm_kb())
"""


def upload_peak_mb(run: Path, workdir: Path) -> tuple[float, float]:
    """``(idle, peak)`` resident MB of a child that loads ``run`` and then predicts and
    explains one 79 MP PNG (written, one colour, into ``workdir``).

    Raises:
        RuntimeError: the child failed.
    """
    huge, small = workdir / "huge.png", workdir / "small.png"
    # One colour compresses to ~0.25 MB, as the attack's file did.
    Image.new("RGB", (SIDE, SIDE), (180, 110, 90)).save(huge, compress_level=1)
    Image.new("RGB", (600, 450), (180, 110, 90)).save(small)
    child = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(run), str(huge), str(small)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
    )
    found = re.search(r"idle_kB: (\d+) peak_kB: (\d+)", child.stdout)
    if child.returncode != 0 or not found:
        raise RuntimeError(f"the upload child failed: {(child.stdout + child.stderr)[-500:]}")
    return int(found.group(1)) / 1024, int(found.group(2)) / 1024
