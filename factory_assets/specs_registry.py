"""The model specs, loaded and validated once when the definitions load."""

from __future__ import annotations

import os
from pathlib import Path

from factory_assets.core.paths import DEFAULT_SPECS_DIR
from factory_assets.core.specs import ModelSpec, load_specs

SPECS_DIR = Path(os.environ.get("FACTORY_SPECS_DIR", str(DEFAULT_SPECS_DIR)))
SPECS: dict[str, ModelSpec] = load_specs(SPECS_DIR)
