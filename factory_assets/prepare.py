"""PLACEHOLDER: to be completed by its owner."""

ASSETS: list = []
CHECKS: list = []
