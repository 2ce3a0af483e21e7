"""GENERATED SYNTHETIC media for tests and for the alignment measurement (not real media).

Nothing here is a real poster, trailer or soundtrack: every file is painted or synthesised
from the item's metadata text (MovieLens: ``movie title: ...; release year: 1995; class:
Animation Children's Comedy``), so that a text encoder and an image/audio encoder can both
"see" the same facts and a contrastive head has something to align. The folder gets a
``README.txt`` saying so and a ``README.generated.json`` listing what was written. Write it under
``build/`` (git-ignored); it is never committed.

What encodes what (u = clip((year - 1920) / 80, 0, 1), 0.5 when the year is unknown; each genre
has a slot s: its index in the MovieLens genre list, unknown genre names hash to slots 19-23):

* image ``<token>.png``, 128 x 128 RGB: background colour from u (blue for old, red for new);
  one horizontal band per genre, painted with the slot's texture (s mod 6: horizontal,
  vertical, diagonal stripes, checkerboard, dots, rings) in the slot's colour (hue s·φ mod 1,
  φ the golden ratio), texture period 6 + 18u pixels; item-seeded texture phases and pixel noise
  (σ = 6) so no two files are identical.
* audio ``<token>.wav``, 2 s, 22.05 kHz, 16-bit mono: a 6-harmonic tone at f0 = 110 · 2^{3u} Hz
  (110-880 Hz) with tremolo at 2 + 8u Hz, plus one component per genre at f_s = 150 · 2^{5.3 s/24}
  Hz of type s mod 4 (steady sine, noise band, up-chirp repeated at 2 Hz, click train at
  3 + s/2 Hz); item-seeded noise floor.
* video ``<token>.gif``, 6 frames of 96 x 96: the image's painting with the textures scrolling
  (phase advancing per frame), for a few items only.

Items are a seeded sample; each gets an image with probability ``p_image``, audio with
``p_audio``; ``n_videos`` of them get a GIF, so some items have only text.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import logging
import re
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fpgarec.errors import FpgarecError

log = logging.getLogger(__name__)

#: MovieLens-100k's genres in its own order: a genre's slot is its index here.
GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
          "War", "Western")
N_SLOTS = 24
IMAGE_SIZE = 128
VIDEO_SIZE = 96
VIDEO_FRAMES = 6
AUDIO_RATE = 22050
AUDIO_SECONDS = 2.0
README_MARKER = "GENERATED SYNTHETIC MEDIA"
_GOLDEN = 0.6180339887498949


@dataclass(frozen=True)
class ItemMeta:
    """What the generator reads from an item's text."""

    title: str
    year: int | None
    genres: tuple[str, ...]

    @property
    def u(self) -> float:
        """The year mapped to [0, 1] (1920 -> 0, 2000 -> 1; unknown -> 0.5)."""
        return 0.5 if self.year is None else float(np.clip((self.year - 1920) / 80.0, 0.0, 1.0))

    @property
    def slots(self) -> tuple[int, ...]:
        return tuple(sorted({genre_slot(g) for g in self.genres}))

    def content_key(self) -> str:
        """Items with equal keys get media that differ only by the item-seeded noise."""
        return f"{self.year}|{','.join(map(str, self.slots))}"


def _fields(text: str) -> dict[str, str]:
    out = {}
    for part in text.split("; "):
        key, sep, value = part.partition(": ")
        if sep:
            out[key.strip().lower()] = value.strip()
    return out


def item_metadata(text: str) -> ItemMeta:
    """Title, year and genres of an item text ``"<column>: <value>; ..."`` (fpgarec.data).

    Year: a column whose name contains ``year`` or ``date``, else the first 18xx/19xx/20xx
    number in the text. Genres: a column named like ``class``/``genre``/``category``, split
    on whitespace, ``|`` or ``,``; none -> ("unknown",)."""
    fields = _fields(text)
    year = None
    for key, value in fields.items():
        if "year" in key or "date" in key:
            m = re.search(r"\b(1[89]\d\d|20\d\d)\b", value)
            if m:
                year = int(m.group(1))
                break
    if year is None:
        m = re.search(r"\b(1[89]\d\d|20\d\d)\b", text)
        year = int(m.group(1)) if m else None
    genres: tuple[str, ...] = ()
    for key, value in fields.items():
        if any(w in key for w in ("class", "genre", "categor")):
            genres = tuple(g for g in re.split(r"[\s|,]+", value) if g)
            break
    title = next((v for k, v in fields.items() if "title" in k or "name" in k), text)
    return ItemMeta(title, year, genres or ("unknown",))


def genre_slot(genre: str) -> int:
    """MovieLens genres -> their index; anything else -> a stable hash into slots 19..23."""
    if genre in GENRES:
        return GENRES.index(genre)
    h = int(hashlib.sha256(genre.lower().encode()).hexdigest(), 16)
    return len(GENRES) + h % (N_SLOTS - len(GENRES))


def _rng(token: str, seed: int, what: str) -> np.random.Generator:
    h = hashlib.sha256(f"{seed}\x00{token}\x00{what}".encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32) * 255.0


def _texture(kind: int, yy: np.ndarray, xx: np.ndarray, period: float, phase: float) -> np.ndarray:
    """A 0/1 pattern of ``kind`` (0-5) with spatial ``period`` pixels, shifted by ``phase``."""
    f = 2 * np.pi / period
    if kind == 0:
        v = np.sin(f * (yy + phase))
    elif kind == 1:
        v = np.sin(f * (xx + phase))
    elif kind == 2:
        v = np.sin(f * (xx + yy + phase) / np.sqrt(2))
    elif kind == 3:
        v = np.sin(f * (xx + phase)) * np.sin(f * (yy + phase))
    elif kind == 4:
        v = np.cos(f * (xx + phase)) * np.cos(f * (yy + phase)) - 0.5
    else:
        r = np.hypot(xx - xx.mean(), yy - yy.mean())
        v = np.sin(f * (r + phase))
    return (v > 0).astype(np.float32)


def paint_image(meta: ItemMeta, token: str, seed: int = 0, size: int = IMAGE_SIZE, shift: float = 0.0) -> np.ndarray:
    """The GENERATED image of an item: uint8 (size, size, 3). ``shift`` scrolls the textures
    (video frames). See the module docstring for what encodes what."""
    rng = _rng(token, seed, "image")
    u = meta.u
    img = np.empty((size, size, 3), np.float32)
    img[:] = _hsv(0.66 * (1.0 - u), 0.55, 0.35 + 0.3 * u)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    slots = meta.slots
    period = 6.0 + 18.0 * u
    edges = np.linspace(0, size, len(slots) + 1).round().astype(int)
    for s, a, b in zip(slots, edges[:-1], edges[1:], strict=True):
        phase = rng.uniform(0, period) + shift * period
        mask = _texture(s % 6, yy[a:b], xx[a:b], period, phase)[..., None]
        colour = _hsv(s * _GOLDEN, 0.9, 0.95)
        img[a:b] = img[a:b] * (1 - mask) + colour * mask
    img += rng.normal(0.0, 6.0, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def synth_audio(meta: ItemMeta, token: str, seed: int = 0, rate: int = AUDIO_RATE,
                seconds: float = AUDIO_SECONDS) -> np.ndarray:
    """The GENERATED audio of an item: int16 (rate · seconds,). See the module docstring."""
    rng = _rng(token, seed, "audio")
    n = int(rate * seconds)
    t = np.arange(n, dtype=np.float64) / rate
    u = meta.u
    f0 = 110.0 * 2 ** (3 * u)
    tone = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 7)
               if k * f0 < rate / 2)
    tremolo = 0.6 + 0.4 * np.sin(2 * np.pi * (2 + 8 * u) * t)
    y = 0.35 * tone * tremolo
    slots = meta.slots
    amp = 0.6 / np.sqrt(len(slots))
    for s in slots:
        fs = 150.0 * 2 ** (5.3 * s / N_SLOTS)
        kind = s % 4
        if kind == 0:
            c = np.sin(2 * np.pi * fs * t)
        elif kind == 1:
            spec = np.fft.rfft(rng.standard_normal(n))
            freqs = np.fft.rfftfreq(n, 1 / rate)
            spec[np.abs(np.log2(np.maximum(freqs, 1) / fs)) > 0.25] = 0
            c = np.fft.irfft(spec, n)
            c /= np.abs(c).max() + 1e-9
        elif kind == 2:
            tau = (t * 2.0) % 1.0  # 2 sweeps per second, fs -> 2 fs
            c = np.sin(2 * np.pi * fs * (tau + tau**2 / 2) / 2.0)
        else:
            c = np.zeros(n)
            step = int(rate / (3 + s / 2))
            for start in range(int(rng.integers(0, step)), n, step):
                m = min(n - start, int(0.01 * rate))
                c[start:start + m] = np.sin(2 * np.pi * fs * t[:m]) * np.exp(-t[:m] * 400)
        y = y + amp * c
    y = y + 0.01 * rng.standard_normal(n)
    y = 0.9 * y / (np.abs(y).max() + 1e-9)
    return (y * 32767).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """16-bit mono PCM WAV with the stdlib ``wave`` module."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())


def write_gif(path: Path, frames: list[np.ndarray], ms_per_frame: int = 200) -> None:
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0)


README = f"""{README_MARKER} - NOT REAL ITEM MEDIA

Every file in this folder was GENERATED by fpgarec.encoders.generated_media.generate_media
from the items' metadata text (title / release year / genres), for tests and for measuring the
multimodal alignment (fpgarec study multimodal --media DIR --generate N).
  <item id>.png  128x128 image: background colour <- year, one textured band per genre
  <item id>.wav  2 s tone: pitch and tremolo <- year, one sound component per genre
  <item id>.gif  6-frame animation of the image's textures (a few items only)
README.generated.json lists the items, their year, genres and files. Do not commit this folder.
"""


def is_generated_folder(folder: Path) -> bool:
    readme = Path(folder) / "README.txt"
    return readme.is_file() and readme.read_text(errors="replace").startswith(README_MARKER)


def generate_media(tokens: list[str], texts: list[str], folder: Path | str, n_items: int | None = None,
                   seed: int = 0, p_image: float = 0.9, p_audio: float = 0.8, n_videos: int | None = None,
                   progress: bool = False) -> dict:
    """Write GENERATED synthetic media for a seeded sample of ``n_items`` items (all when None)
    into ``folder``, with README.txt and README.generated.json. Returns README.generated.json's content.

    ``tokens``/``texts``: the items' ids and metadata texts (``InteractionData.item_tokens``,
    ``.item_text``). ``n_videos`` default: max(3, 3 % of the sample).

    Raises:
        FpgarecError: ``folder`` exists, is not empty and was not made by this generator.
    """
    from PIL import Image
    from tqdm.auto import tqdm

    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()) and not is_generated_folder(folder):
        raise FpgarecError(f"{folder}: not empty and not a generated-media folder; "
                           "give an empty or new folder to --generate")
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = len(tokens) if n_items is None else min(n_items, len(tokens))
    chosen = np.sort(rng.choice(len(tokens), size=n, replace=False))
    has_image = rng.random(n) < p_image
    has_audio = rng.random(n) < p_audio
    n_videos = max(3, round(0.03 * n)) if n_videos is None else n_videos
    video = np.zeros(n, bool)
    video[rng.choice(n, size=min(n_videos, n), replace=False)] = True
    (folder / "README.txt").write_text(README)
    manifest = {"generated_by": "fpgarec.encoders.generated_media.generate_media", "synthetic": True,
                "seed": seed, "items": {}}
    for j in tqdm(range(n), desc="generating media", unit="item", disable=not progress):
        tok, meta = tokens[chosen[j]], item_metadata(texts[chosen[j]])
        files = []
        if has_image[j]:
            Image.fromarray(paint_image(meta, tok, seed)).save(folder / f"{tok}.png")
            files.append(f"{tok}.png")
        if has_audio[j]:
            write_wav(folder / f"{tok}.wav", synth_audio(meta, tok, seed), AUDIO_RATE)
            files.append(f"{tok}.wav")
        if video[j]:
            frames = [paint_image(meta, tok, seed, VIDEO_SIZE, shift=f / VIDEO_FRAMES) for f in range(VIDEO_FRAMES)]
            write_gif(folder / f"{tok}.gif", frames)
            files.append(f"{tok}.gif")
        manifest["items"][tok] = {"year": meta.year, "genres": list(meta.genres), "key": meta.content_key(),
                                  "files": files}
    (folder / "README.generated.json").write_text(json.dumps(manifest, indent=1))
    log.info("generated synthetic media for %d items in %s (%d images, %d audio, %d GIF videos)",
             n, folder, int(has_image.sum()), int(has_audio.sum()), int(video.sum()))
    return manifest
