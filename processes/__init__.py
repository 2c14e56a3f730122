"""Entry points, one module per process of the platform: each builds its context from the
settings and starts its server (`python -m processes.<name>`)."""
