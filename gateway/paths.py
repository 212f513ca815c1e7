"""Where the repository's own files are (plumber/, demo/, .rlib), for the modules that run R."""

from __future__ import annotations

from pathlib import Path

# The checkout this package runs from (installed editable: `pip install -e .`).
REPO_ROOT = Path(__file__).resolve().parents[1]
