"""Where things are: the repository root and the template's project folder."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIR = ROOT / "{{cookiecutter.project}}"
