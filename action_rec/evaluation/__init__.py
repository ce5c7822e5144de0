"""Evaluation: metrics, complexity (params, GFLOPs), reports."""
