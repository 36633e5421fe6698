"""Stage 1, the CAR: sources (landing files, external exports), ingest, and Data Checker 1."""
