"""Audio -> 512-d vectors with the aiSFX sound-effects embedding network, offline.

aiSFX (``aisfx==0.1.2``, ISMIR 2022, installed with ``--no-deps``: its own pins would replace
numpy) ships its trained weights in the wheel. Only its network class is used; its file reading
and spectrogram code need librosa, so the log-mel spectrogram is computed here in numpy/scipy
with the package's documented settings:

    y ← resample(y, 44.1 kHz) / max|y|                                 mono, peak-normalised
    S[f, t] = |STFT_{2048, hop 1024, Hann, zero padding}(y)|²
    M = W S,  W ∈ R^{96 x 1025}  HTK mel triangles 0-22.05 kHz, each row scaled to Σ = 1
    X = log10(10⁴ M + 1) / 9.4578                                      (aiSFX's 'original' scaling)
    blocks B_b = X[:, 50b : 50b + 100]ᵀ ∈ R^{100 x 96}                 (≈ 2.3 s, hop 1.16 s,
                                                                        zero-padded; ≥ 1 block)
    e = (1/n_b) Σ_b EmbeddingNet(B_b)                                  e ∈ R^512

EmbeddingNet is four conv blocks, mean over frequency, max over time (per block).

Why aiSFX and not torchcrepe: both were probed here. torchcrepe 0.0.24 imports torchaudio at
package import, and no torchaudio wheel exists for torch 2.13 (PyPI stops at 2.11), so it only
runs with a stub module put in ``sys.modules``, plus librosa, numba, resampy and ten more
packages; and its embedding is a pitch tracker's. aiSFX runs with torch + numpy alone and embeds
general sound (sound-effect libraries), closer to item audio such as trailers.

Shapes: a list of N (samples (T,), rate) -> (N, 512) float32.
"""

from __future__ import annotations

import logging
from math import gcd

import numpy as np

log = logging.getLogger(__name__)

MODEL_NAME = "aisfx-X-Sequential-CE"
DIM = 512
SAMPLE_RATE = 44100
N_FFT = 2048
HOP = 1024
N_MELS = 96
F_MIN, F_MAX = 0.0, 22050.0
SPEC_MAX = 9.457798957824707  # aiSFX 'original' min-max normalisation (min 0)
BLOCK = 100
BLOCK_HOP = 50
ENCODER_ID = f"{MODEL_NAME}/sr{SAMPLE_RATE}-fft{N_FFT}-hop{HOP}-mel{N_MELS}-block{BLOCK}-{BLOCK_HOP}/v1"


def resample(y: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling to ``target`` Hz. Shapes: (T,) -> (T · target / rate,)."""
    if rate == target:
        return y.astype(np.float32)
    from scipy.signal import resample_poly

    g = gcd(int(rate), int(target))
    return resample_poly(y, target // g, int(rate) // g).astype(np.float32)


def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS,
                   f_min: float = F_MIN, f_max: float = F_MAX) -> np.ndarray:
    """HTK-mel triangular filters, each row scaled to unit sum (librosa ``htk=True, norm=1``).
    Shape (n_mels, n_fft // 2 + 1)."""
    fft_f = np.linspace(0.0, sr / 2.0, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(f_min), _hz_to_mel(f_max), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_f[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    w = np.maximum(0.0, np.minimum(lower, upper))
    s = w.sum(axis=1, keepdims=True)
    return (w / np.where(s > 0, s, 1.0)).astype(np.float32)


_FILTERS: np.ndarray | None = None


def log_mel(y: np.ndarray) -> np.ndarray:
    """Peak-normalised 44.1 kHz samples (T,) -> X, float32 (frames, 96), frames = 1 + T // 1024."""
    global _FILTERS
    if _FILTERS is None:
        _FILTERS = mel_filterbank()
    from scipy.signal import get_window

    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    y = y / peak if peak > 0 else y
    y = np.pad(y.astype(np.float32), N_FFT // 2)
    n = 1 + (len(y) - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
    frames = y[idx] * get_window("hann", N_FFT, fftbins=True).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (frames, 1025)
    mel = power @ _FILTERS.T
    return (np.log10(mel * 10000.0 + 1.0) / SPEC_MAX).astype(np.float32)


def blocks(spec: np.ndarray) -> np.ndarray:
    """Cut X (frames, 96) into 100-frame blocks at hop 50, the last partial block dropped unless
    it is the only one (aiSFX ``blocking(..., drop_partial_block=True)``). Shape (n_b, 100, 96)."""
    n = spec.shape[0]
    n_b = max(1, int(np.ceil((n - BLOCK) / BLOCK_HOP + 1)) - int((n - BLOCK) % BLOCK_HOP != 0))
    padded = np.concatenate([spec, np.zeros((BLOCK, spec.shape[1]), spec.dtype)])
    return np.stack([padded[i * BLOCK_HOP:i * BLOCK_HOP + BLOCK] for i in range(n_b)])


def load_aisfx():
    """aiSFX's EmbeddingNet with the bundled weights, eval mode, CPU.

    The checkpoint is a (state dict, dataset dict) tuple; it is read with ``weights_only=True``
    and one allow-listed numpy scalar type (the dataset dict holds numpy ints)."""
    import torch
    from aisfx.inference import get_path_modelWeights
    from aisfx.models.cnn2d import EmbeddingNet

    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import scalar
    allowed = [(scalar, "numpy.core.multiarray.scalar"), np.dtype, type(np.dtype(np.int64))]
    with torch.serialization.safe_globals(allowed):
        weights, _ = torch.load(get_path_modelWeights(), map_location="cpu", weights_only=True)
    net = EmbeddingNet("max", 3, 1, 64)
    net.load_state_dict({k.removeprefix("embedding_net."): v for k, v in weights.items()
                         if k.startswith("embedding_net.")})
    return net.eval()


class AudioEncoder:
    """aiSFX embeddings of audio clips, loaded on first use."""

    encoder_id = ENCODER_ID
    dim = DIM

    def __init__(self):
        self._model = None

    @property
    def model(self):
        if self._model is None:
            self._model = load_aisfx()
        return self._model

    def encode_one(self, samples: np.ndarray, rate: int) -> np.ndarray:
        """One clip -> e, float32 (512,)."""
        import torch

        x = torch.from_numpy(blocks(log_mel(resample(samples, rate))))
        with torch.no_grad():
            return self.model(x).mean(0).numpy().astype(np.float32)

    def encode(self, clips: list[tuple[np.ndarray, int]]) -> np.ndarray:
        """N clips (samples (T,), rate) -> (N, 512)."""
        if not clips:
            return np.zeros((0, DIM), np.float32)
        return np.stack([self.encode_one(y, r) for y, r in clips])
