"""Stages 5 and 6: scoring, Data Checker 2, publishing releases, the release store and its reader."""
