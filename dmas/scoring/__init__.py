"""Scoring a trained run: its verified bundle and explanations for single entities."""
