"""Where the bundled real reference data lives (see reference/README.md)."""

from pathlib import Path

REFERENCE_DIR = Path(__file__).parent / "reference"
