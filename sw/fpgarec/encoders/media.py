"""Item media on disk: file naming, discovery, decoding with limits, and the feature cache.

Naming rule
-----------
A media folder (``--media DIR``) is read flat (no sub-folders). Each file is named
``<item token>.<extension>``, the item token being the RecBole ``item_id`` exactly as written in
the ``.inter``/``.item`` files (``42.png`` is the image of item ``42``; the token may itself
contain dots: ``a.b.wav`` is the audio of item ``a.b``). The extension, case-insensitive, gives
the modality:

========  ==============================================  ==================================
modality  extensions                                      decoded by
========  ==============================================  ==================================
image     ``.png .jpg .jpeg .bmp .webp``                  Pillow (first frame)
audio     ``.wav`` (PCM 8/16/24/32-bit or float, any      ``scipy.io.wavfile``
          rate 4-192 kHz, any channel count);
          ``.mp3 .ogg .oga .opus .flac .m4a .aac``        PyAV (FFmpeg)
video     ``.gif`` (animated; a still GIF is a 1-frame    Pillow, frames sampled uniformly
          video); ``.mp4 .m4v .mov .mkv .webm .avi``      PyAV (FFmpeg), frames sampled
                                                          uniformly in time by seeking
========  ==============================================  ==================================

Files whose name starts with ``.`` or ``README`` are ignored silently. Every other file that is
not usable is skipped with ONE warning log line naming it and the reason: unknown extension,
no item with that token, a second file of the same modality for the same item (the first in
sorted name order is kept), empty or larger than ``max_file_bytes``, undecodable or of the
wrong format, too small (image side < ``min_image_side``), too large (more than
``max_image_pixels`` pixels), or audio shorter than ``min_audio_seconds``. Audio longer than
``max_audio_seconds`` is cut to its beginning (not skipped). A container video is skipped
when it has no video stream, no decodable frame, or frames outside the image size limits (one
of unknown duration gives its first frame only).

Feature cache
-------------
Encoder outputs are cached per encoder in ``<cache>/<encoder>/{keys,vectors}.npy`` (no
pickles), keyed by ``sha256(encoder id || 0x00 || file bytes)``: a renamed file is not
re-encoded; a changed file or a changed encoder/preprocessing id is.
"""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fpgarec.errors import FpgarecError

log = logging.getLogger(__name__)

#: extension (lower case, with dot) -> modality
EXTENSIONS: dict[str, str] = {
    ".png": "image", ".jpg": "image", ".jpeg": "image", ".bmp": "image", ".webp": "image",
    ".wav": "audio", ".mp3": "audio", ".ogg": "audio", ".oga": "audio", ".opus": "audio", ".flac": "audio",
    ".m4a": "audio", ".aac": "audio",
    ".gif": "video", ".mp4": "video", ".m4v": "video", ".mov": "video", ".mkv": "video", ".webm": "video",
    ".avi": "video",
}
#: the media modalities, in report order (text is always present and is not a file)
MODALITIES = ("image", "audio", "video")


@dataclass(frozen=True)
class MediaLimits:
    """What a media file must satisfy to be used (outside: skipped with one warning)."""

    max_file_bytes: int = 64 << 20
    min_image_side: int = 16
    max_image_pixels: int = 40_000_000
    min_audio_seconds: float = 0.1
    max_audio_seconds: float = 10.0
    min_audio_rate: int = 4000
    max_audio_rate: int = 192_000
    #: frames sampled (uniformly over the clip) from a video
    video_frames: int = 8


@dataclass(frozen=True)
class MediaFile:
    """One usable-looking file: its path, item index and token, modality."""

    path: Path
    item: int
    token: str
    modality: str


@dataclass
class MediaScan:
    """The result of :func:`scan_media`: files to decode, and files already skipped."""

    folder: Path
    files: list[MediaFile] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)

    def skip(self, path: Path, reason: str) -> None:
        """Record ``path`` as skipped and log the one warning line that names it."""
        skip(self.skipped, path, reason)

    def by_modality(self, modality: str) -> list[MediaFile]:
        return [f for f in self.files if f.modality == modality]


class MediaSkipped(Exception):
    """A media file cannot be used; the message is the reason (logged once by the caller)."""


def skip(skipped: list[dict], path: Path, reason: str) -> None:
    """Append ``{"file", "reason"}`` to ``skipped`` and log ONE warning naming the file."""
    log.warning("media file skipped: %s: %s", path, reason)
    skipped.append({"file": str(path), "reason": reason})


def _ignored(name: str) -> bool:
    return name.startswith(".") or name.upper().startswith("README")


def scan_media(folder: Path | str, item_tokens: list[str]) -> MediaScan:
    """List the media files of ``folder`` for items ``item_tokens`` (index = item index).

    Raises:
        FpgarecError: ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FpgarecError(f"{folder}: media folder not found")
    index = {t: i for i, t in enumerate(item_tokens)}
    scan = MediaScan(folder)
    used: dict[tuple[int, str], Path] = {}
    for path in sorted(folder.iterdir()):
        name = path.name
        if _ignored(name):
            continue
        if not path.is_file():
            scan.skip(path, "not a regular file (sub-folders are not read)")
            continue
        suffix = path.suffix.lower()
        modality = EXTENSIONS.get(suffix)
        if modality is None:
            scan.skip(path, f"unsupported extension {path.suffix or '(none)'!r}; "
                            f"expected one of {' '.join(sorted(EXTENSIONS))}")
            continue
        token = name[: -len(suffix)]
        item = index.get(token)
        if item is None:
            scan.skip(path, f"no item with id {token!r} in the data set")
            continue
        first = used.get((item, modality))
        if first is not None:
            scan.skip(path, f"item {token!r} already has a {modality} file ({first.name})")
            continue
        used[(item, modality)] = path
        scan.files.append(MediaFile(path, item, token, modality))
    return scan


def read_bytes(path: Path, limits: MediaLimits) -> bytes:
    """The file's bytes. Raises :class:`MediaSkipped` when unreadable, empty or too large."""
    try:
        size = path.stat().st_size
        if size == 0:
            raise MediaSkipped("empty file")
        if size > limits.max_file_bytes:
            raise MediaSkipped(f"file too large ({size} bytes > {limits.max_file_bytes})")
        return path.read_bytes()
    except OSError as exc:
        raise MediaSkipped(f"unreadable ({exc.strerror or exc})") from exc


def _open_image(data: bytes, limits: MediaLimits):
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaSkipped(f"not a decodable image ({type(exc).__name__})") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise MediaSkipped(f"not a decodable image ({exc})") from exc
    if min(w, h) < limits.min_image_side:
        raise MediaSkipped(f"image too small ({w}x{h}; each side must be >= {limits.min_image_side})")
    if w * h > limits.max_image_pixels:
        raise MediaSkipped(f"image too large ({w}x{h} > {limits.max_image_pixels} pixels)")
    return img


def _to_rgb(img):
    """RGB copy of the current frame; transparent pixels become black."""
    from PIL import Image

    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        out = Image.new("RGB", rgba.size, (0, 0, 0))
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out
    return img.convert("RGB")


def decode_image(data: bytes, limits: MediaLimits = MediaLimits()):
    """A still image's first frame as an RGB ``PIL.Image``. Raises :class:`MediaSkipped`."""
    img = _open_image(data, limits)
    try:
        img.load()
        return _to_rgb(img)
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt data
        raise MediaSkipped(f"image data is corrupt ({exc})") from exc


def frame_indices(n_frames: int, n: int) -> np.ndarray:
    """``min(n, n_frames)`` frame indices spread uniformly: the centres of equal segments,
    i_j = floor((j + 1/2) F / n), j = 0..n-1."""
    n = max(1, min(n, n_frames))
    return np.floor((np.arange(n) + 0.5) * n_frames / n).astype(np.int64)


def decode_video(data: bytes, limits: MediaLimits = MediaLimits()) -> list:
    """Frames of a video, ``limits.video_frames`` of them at most, sampled uniformly, as RGB
    ``PIL.Image`` s: an animated GIF (Pillow; any multi-frame image) or a container file (mp4,
    mov, mkv, webm, avi: :func:`decode_container_video`). Raises :class:`MediaSkipped`."""
    if not data.startswith((b"GIF87a", b"GIF89a")):
        still = _image_format(data)
        if still is not None:
            raise MediaSkipped(f"a video must be an animated GIF or a video file, this is a {still} image")
        return decode_container_video(data, limits)
    img = _open_image(data, limits)
    if img.format != "GIF":
        raise MediaSkipped(f"a video must be an animated GIF, this is {img.format}")
    try:
        n_frames = int(getattr(img, "n_frames", 1))
        frames = []
        for i in frame_indices(n_frames, limits.video_frames):
            img.seek(int(i))
            frames.append(_to_rgb(img))
        return frames
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise MediaSkipped(f"video data is corrupt ({exc})") from exc


def _image_format(data: bytes) -> str | None:
    """Pillow's format name if ``data`` is a still image Pillow recognises, else None."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.format
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def _pyav(without: str):
    """The ``av`` module (PyAV), or :class:`MediaSkipped` saying what can be read ``without`` it."""
    try:
        import av
    except ImportError as exc:  # media extras not installed
        raise MediaSkipped(f"PyAV is not installed (requirements/media.txt); {without}") from exc
    return av


def decode_container_video(data: bytes, limits: MediaLimits = MediaLimits()) -> list:
    """``limits.video_frames`` frames of a container video, at the centres of equal time
    segments t_j = (j + 1/2) T / n of its duration T, as RGB ``PIL.Image`` s (PyAV, the FFmpeg
    libraries inside its wheel). Each frame is the first decoded at or after t_j, reached by
    seeking to the key frame before it, so a long video is not decoded whole. Raises
    :class:`MediaSkipped`."""
    av = _pyav("only GIF videos can be read")
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video:
                raise MediaSkipped("no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            base = float(stream.time_base) if stream.time_base else 1e-6
            if stream.duration:
                seconds = stream.duration * base
            elif container.duration:
                seconds = container.duration / 1e6
            else:
                seconds = 0.0
            start = (stream.start_time or 0) * base
            n = max(1, limits.video_frames) if seconds > 0 else 1
            frames = []
            for j in range(n):
                t = start + (j + 0.5) * seconds / n
                container.seek(int(t / base), stream=stream, backward=True, any_frame=False)
                frame = next((f for f in container.decode(stream) if f.time is None or f.time >= t - 1e-6), None)
                if frame is None:
                    continue
                w, h = frame.width, frame.height
                if min(w, h) < limits.min_image_side:
                    raise MediaSkipped(f"video frame too small ({w}x{h}; each side must be >= {limits.min_image_side})")
                if w * h > limits.max_image_pixels:
                    raise MediaSkipped(f"video frame too large ({w}x{h} > {limits.max_image_pixels} pixels)")
                frames.append(frame.to_image().convert("RGB"))
    except MediaSkipped:
        raise
    except (av.FFmpegError, OSError, ValueError, StopIteration) as exc:
        raise MediaSkipped(f"not a decodable video ({type(exc).__name__}: {exc})") from exc
    if not frames:
        raise MediaSkipped("no decodable video frame")
    return frames


def decode_audio(data: bytes, limits: MediaLimits = MediaLimits()) -> tuple[np.ndarray, int]:
    """(mono samples in [-1, 1] float32 (T,), sample rate) of an audio file: WAV through
    :func:`decode_wav`, anything else (mp3, ogg/vorbis/opus, flac, m4a/aac) through PyAV. Cut to
    ``max_audio_seconds``; channels averaged. Raises :class:`MediaSkipped`."""
    if data.startswith(b"RIFF"):
        return decode_wav(data, limits)
    av = _pyav("only WAV audio can be read")
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise MediaSkipped("no audio stream")
            stream = container.streams.audio[0]
            rate = int(stream.rate or 0)
            if not limits.min_audio_rate <= rate <= limits.max_audio_rate:
                raise MediaSkipped(f"sample rate {rate} Hz outside {limits.min_audio_rate}..{limits.max_audio_rate}")
            resampler = av.AudioResampler(format="fltp", rate=rate)  # planar float32, source layout
            limit = int(limits.max_audio_seconds * rate)
            chunks, n = [], 0
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().mean(axis=0))  # (channels, samples) -> samples
                    n += chunks[-1].shape[0]
                if n >= limit:
                    break
    except MediaSkipped:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise MediaSkipped(f"not a decodable audio file ({type(exc).__name__}: {exc})") from exc
    y = np.concatenate(chunks).astype(np.float32)[:limit] if chunks else np.zeros(0, np.float32)
    if len(y) < limits.min_audio_seconds * rate:
        raise MediaSkipped(f"audio too short ({len(y) / rate:.3f} s < {limits.min_audio_seconds} s)")
    if not np.isfinite(y).all():
        raise MediaSkipped("audio holds non-finite samples")
    return np.clip(y, -1.0, 1.0), rate


def decode_wav(data: bytes, limits: MediaLimits = MediaLimits()) -> tuple[np.ndarray, int]:
    """(mono samples in [-1, 1] float32 (T,), sample rate) of a WAV file, cut to
    ``max_audio_seconds``. Channels are averaged. Raises :class:`MediaSkipped`."""
    from scipy.io import wavfile

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unknown chunks: the samples are still read
            rate, x = wavfile.read(io.BytesIO(data))
    except (ValueError, EOFError, OSError, TypeError, IndexError) as exc:
        raise MediaSkipped(f"not a readable WAV file ({exc})") from exc
    if not limits.min_audio_rate <= rate <= limits.max_audio_rate:
        raise MediaSkipped(f"sample rate {rate} Hz outside {limits.min_audio_rate}..{limits.max_audio_rate}")
    x = x[: int(limits.max_audio_seconds * rate)]
    if x.dtype == np.uint8:
        y = (x.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(x.dtype, np.integer):
        y = x.astype(np.float32) / float(-np.iinfo(x.dtype).min)
    else:
        y = x.astype(np.float32)
    if y.ndim == 2:
        y = y.mean(axis=1)
    if len(y) < limits.min_audio_seconds * rate:
        raise MediaSkipped(f"audio too short ({len(y) / rate:.3f} s < {limits.min_audio_seconds} s)")
    if not np.isfinite(y).all():
        raise MediaSkipped("audio holds non-finite samples")
    return np.clip(y, -1.0, 1.0), int(rate)


def content_key(encoder_id: str, data: bytes) -> str:
    """The cache key of a file's content under one encoder: sha256(encoder id, 0x00, bytes)."""
    h = hashlib.sha256(encoder_id.encode())
    h.update(b"\x00")
    h.update(data)
    return h.hexdigest()


class FeatureCache:
    """A persistent map key -> float32 vector of one encoder, as ``keys.npy`` (U64) and
    ``vectors.npy`` (n, dim) in ``folder`` (no pickles). Like the text cache."""

    def __init__(self, folder: Path, dim: int):
        self.dir = Path(folder)
        self.dim = dim
        self.table: dict[str, np.ndarray] = {}
        self._dirty = False
        keys, vecs = self.dir / "keys.npy", self.dir / "vectors.npy"
        if keys.exists() and vecs.exists():
            try:
                k = np.load(keys, allow_pickle=False)
                v = np.load(vecs, allow_pickle=False)
            except (OSError, ValueError) as exc:
                log.warning("feature cache %s is unreadable (%s); rebuilding it", self.dir, exc)
            else:
                if len(k) == len(v) and v.ndim == 2 and v.shape[1] == dim:
                    self.table = dict(zip(k.tolist(), v, strict=True))
                else:
                    log.warning("feature cache %s is inconsistent; rebuilding it", self.dir)

    def get(self, key: str) -> np.ndarray | None:
        return self.table.get(key)

    def put(self, key: str, vector: np.ndarray) -> None:
        self.table[key] = np.asarray(vector, dtype=np.float32).reshape(self.dim)
        self._dirty = True

    def save(self) -> None:
        if not self._dirty:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self.table), dtype="U64")
        vecs = np.stack(list(self.table.values())).astype(np.float32)
        np.save(self.dir / "keys.npy", keys)
        np.save(self.dir / "vectors.npy", vecs)
        self._dirty = False
