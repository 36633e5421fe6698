"""PLACEHOLDER: to be completed by its owner."""

SENSORS: list = []
