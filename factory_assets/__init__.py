"""The model factory: Dagster assets over a pure domain core (`factory_assets.core`)."""
