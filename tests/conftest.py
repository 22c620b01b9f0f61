"""Test-wide setup: hypothesis profiles and the per-layer support modules.

Profiles: `ci` (default, small) and `thorough` (HYPOTHESIS_PROFILE=thorough). Tests run
with --import-mode=importlib, so each layer's folder is put on sys.path for its
`<layer>_support` helpers.
"""

import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

for _folder in sorted(p for p in Path(__file__).resolve().parent.iterdir() if p.is_dir() and p.name != "__pycache__"):
    if str(_folder) not in sys.path:
        sys.path.append(str(_folder))

# ci replays the same examples on every run (a landing must not hinge on a lucky draw);
# thorough explores new ones each time.
settings.register_profile(
    "ci", max_examples=20, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
