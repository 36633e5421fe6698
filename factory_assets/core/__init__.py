"""Pure domain logic of the model factory. Nothing in this package imports Dagster."""
