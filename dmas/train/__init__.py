"""Training: tensors, the multi-task model loop, test metrics and baselines."""
