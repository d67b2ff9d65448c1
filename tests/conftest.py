"""Shared test setup: make the vendored framework importable from the template folder."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = ROOT / "{{cookiecutter.project}}"

sys.path.insert(0, str(TEMPLATE_DIR))
