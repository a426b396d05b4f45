"""The collapse engine: compare a candidate dataset with a reference on eight calibrated dimensions."""
