"""Shared test setup: ``support`` (tests/support/) and the vendored framework importable."""

import sys
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from support.paths import TEMPLATE_DIR  # noqa: E402 - needs TESTS_DIR on sys.path

sys.path.insert(0, str(TEMPLATE_DIR))
