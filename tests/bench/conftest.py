"""The benchmark harness's own modules (bench/) and its apps (bench/apps/) importable
by the tests here, as they are when bench/run.py runs."""

import sys

from support.paths import ROOT

for folder in (ROOT / "bench" / "apps", ROOT / "bench"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
