"""The HTTP API that serves released scores (`serving.api:app`)."""
