"""Stage 4, the factory: drift, retrain triggers, challengers, champion rules, decisions, model store."""
