"""The Ray Serve application of dmas (see serve/app.py)."""
