"""The seeded demo CAR generator (media markets) and its fault catalogue. Never imported by the core."""
