"""The factory status grid: what each stage recorded per cell, summed up for the analyst, and its HTML."""
