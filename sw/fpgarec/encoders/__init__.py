"""Pretrained encoders for item side information (language model; image/audio later)."""
