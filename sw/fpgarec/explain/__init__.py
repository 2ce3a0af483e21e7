"""Explanations: which neighbours and modalities weighed in a recommendation, and interest over time."""
