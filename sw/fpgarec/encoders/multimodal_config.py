"""Settings of the multimodal item encoder (:mod:`fpgarec.encoders.multimodal`)."""

from __future__ import annotations

from dataclasses import dataclass

from fpgarec.encoders import media as media_io

#: modality -> projection head (video frames go through the image network, so the image head)
HEAD_OF = {"text": "text", "image": "image", "video": "image", "audio": "audio"}
RECALL_KS = (1, 10)


@dataclass
class MultimodalConfig:
    """Settings of the multimodal encoder (the demo's ``--media`` run uses the defaults)."""

    #: width d of the aligned item space (the vectors replacing the 384-d MiniLM table)
    dim: int = 256
    #: hidden width of every projection head (0: one linear layer)
    hidden: int = 512
    #: maximum training epochs of the heads (each epoch sees every training pair once)
    epochs: int = 100
    #: share of the training items set aside to stop early on their InfoNCE loss (and to
    #: restore the best epoch); none when that is fewer than 8 items
    val_fraction: float = 0.15
    #: epochs without a better early-stopping loss before training stops
    patience: int = 4
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    #: initial InfoNCE temperature τ (learned; e^s = 1/τ is clamped to max_logit_scale)
    temperature: float = 0.07
    max_logit_scale: float = 100.0
    #: share of the items with media held out of training to measure retrieval
    holdout: float = 0.2
    seed: int = 0
    #: images per EfficientNet forward pass
    image_batch: int = 16
    video_frames: int = 8
    max_audio_seconds: float = 10.0
    min_audio_seconds: float = 0.1
    min_image_side: int = 16
    max_image_pixels: int = 40_000_000
    max_file_bytes: int = 64 << 20

    def limits(self) -> media_io.MediaLimits:
        return media_io.MediaLimits(
            max_file_bytes=self.max_file_bytes, min_image_side=self.min_image_side,
            max_image_pixels=self.max_image_pixels, min_audio_seconds=self.min_audio_seconds,
            max_audio_seconds=self.max_audio_seconds, video_frames=self.video_frames,
        )
