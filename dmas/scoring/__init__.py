"""Scoring with a trained run: live and inline inputs, fixed-shape forward passes, receipts and their check."""
