"""Training: losses, metrics, the one evaluation function, the training loop (DDP-aware)."""
