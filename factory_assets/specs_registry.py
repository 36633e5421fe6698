"""The deployment and its model specs, loaded and validated once when the definitions load."""

from __future__ import annotations

from factory_assets.core.specs import ModelSpec
from factory_assets.deployment import Deployment, current

DEPLOYMENT: Deployment = current()
"""The deployment the environment names (`FACTORY_PROJECT_DIR`, default: the repository root)."""
SPECS: dict[str, ModelSpec] = DEPLOYMENT.specs
