"""Models: baselines, the float hybrid teacher, the quantized student built from kernel modules."""
