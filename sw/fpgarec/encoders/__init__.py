"""Pretrained encoders for item side information (language model; image, audio and video: image.py, audio.py, multimodal.py)."""
