"""Stages 2 and 3, preparation: targets, history features, cleaning, the training frame, sampling."""
