"""The multimodal item encoder: media naming and skipping, shapes, missing modalities, the
InfoNCE loss and retrieval recall on hand cases, the synthetic-media generator."""

from __future__ import annotations

import io
import json
import logging
import math
import wave

import numpy as np
import pytest

from fpgarec.data.dataset import InteractionData
from fpgarec.encoders import media, media_features, multimodal
from fpgarec.encoders.generated_media import generate_media, is_generated_folder, item_metadata
from fpgarec.encoders.multimodal import (
    MultimodalConfig,
    info_nce,
    multimodal_item_vectors,
    recall_at_k,
)
from fpgarec.errors import FpgarecError

N_ITEMS = 30
TEXTS = [f"movie title: Film {i}; release year: {1930 + 2 * i}; class: {['Drama', 'Comedy', 'Action'][i % 3]}"
         for i in range(N_ITEMS)]


def _data(n: int = N_ITEMS) -> InteractionData:
    z = np.zeros(1, np.int64)
    return InteractionData(name="t", folder=None, user_tokens=["u"], item_tokens=[str(i + 1) for i in range(n)],
                           user=z, item=z, timestamp=np.zeros(1), item_text=TEXTS[:n], kg=None)


def _text(n: int = N_ITEMS, seed: int = 0) -> np.ndarray:
    t = np.random.default_rng(seed).standard_normal((n, 384)).astype(np.float32)
    return t / np.linalg.norm(t, axis=1, keepdims=True)


def _png(size=(32, 32), colour=(200, 30, 30), fmt="PNG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format=fmt)
    return buf.getvalue()


def _gif(frames: int = 3) -> bytes:
    from PIL import Image

    imgs = [Image.new("RGB", (32, 32), (40 * f, 0, 0)) for f in range(frames)]
    buf = io.BytesIO()
    imgs[0].save(buf, format="GIF", save_all=True, append_images=imgs[1:], duration=100)
    return buf.getvalue()


def _video(frames: int = 30, fps: int = 10, size=(64, 48), codec: str = "mpeg4", fmt: str = "mp4") -> bytes:
    """A container video (PyAV) whose frame i is uniformly red = 8 i."""
    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(frames):
            img = np.zeros((size[1], size[0], 3), np.uint8)
            img[..., 0] = 8 * i
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def _wav(seconds: float = 0.5, rate: int = 16000, freq: float = 440.0) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.sin(2 * np.pi * freq * t) * 20000).astype("<i2").tobytes())
    return buf.getvalue()


def _coded_audio(codec: str, fmt: str, seconds: float = 0.5, rate: int = 16000, freq: float = 440.0,
                 channels: int = 2) -> bytes:
    """The samples of :func:`_wav` (on every channel), encoded with PyAV."""
    import av

    t = np.arange(int(seconds * rate)) / rate
    x = (np.sin(2 * np.pi * freq * t) * 20000).astype(np.int16)
    layout = "stereo" if channels == 2 else "mono"
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(np.repeat(x[None, :], channels, 0).T.reshape(1, -1).copy(),
                                           format="s16", layout=layout)
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


class StubImage:
    """A fast stand-in for EfficientNet: the mean colour, repeated (same interface)."""

    encoder_id, dim, model = "stub-image/v1", 12, None

    def encode(self, images):
        return np.stack([np.tile(np.asarray(im, np.float32).mean((0, 1)) / 255.0, 4) for im in images])

    def encode_video(self, frames):
        return self.encode(frames).mean(0)


class StubAudio:
    encoder_id, dim, model = "stub-audio/v1", 6, None

    def encode_one(self, samples, rate):
        spec = np.abs(np.fft.rfft(samples, 64))[:6]
        return (spec / (spec.sum() + 1e-9)).astype(np.float32)


def _stub(monkeypatch):
    image = StubImage()
    monkeypatch.setattr(media_features, "_encoders", lambda cfg: {"image": image, "video": image, "audio": StubAudio()})


def _write_media(folder, items_image=range(1, 21), items_audio=range(1, 16), items_video=(2, 3)):
    folder.mkdir(exist_ok=True)
    for i in items_image:
        (folder / f"{i}.png").write_bytes(_png(colour=(8 * i, 255 - 8 * i, (37 * i) % 256)))
    for i in items_audio:  # every third one as FLAC
        if i % 3:
            (folder / f"{i}.wav").write_bytes(_wav(freq=200 + 40 * i))
        else:
            (folder / f"{i}.flac").write_bytes(_coded_audio("flac", "flac", freq=200 + 40 * i))
    for n, i in enumerate(items_video):  # GIF and mp4 in turn
        (folder / f"{i}.gif").write_bytes(_gif()) if n % 2 == 0 else (folder / f"{i}.mp4").write_bytes(_video())
    return folder


BAD = {
    "21.png": b"this is not an image",                 # wrong format
    "22.png": None,                                      # too small (8x8), written below
    "23.wav": None,                                      # a PNG named .wav, written below
    "24.wav": None,                                      # too short, written below
    "25.mid": b"MThd\x00\x00\x00\x06",                   # unsupported extension
    "999.png": None,                                     # no such item
    "1.png": None,                                       # second image of item 1 (1.jpg kept)
    "26.gif": None,                                      # truncated GIF
    "27.png": b"",                                       # empty
    "28.gif": None,                                      # a PNG named .gif: not a GIF video
    "29.mp4": None,                                      # truncated mp4
}


def _write_bad(folder):
    BAD_BYTES = dict(BAD)
    BAD_BYTES["22.png"] = _png(size=(8, 8))
    BAD_BYTES["23.wav"] = _png()
    BAD_BYTES["24.wav"] = _wav(seconds=0.01)
    BAD_BYTES["999.png"] = _png()
    BAD_BYTES["1.png"] = _png()
    BAD_BYTES["26.gif"] = _gif()[:40]
    BAD_BYTES["28.gif"] = _png()
    BAD_BYTES["29.mp4"] = _video()[:200]
    for name, data in BAD_BYTES.items():
        (folder / name).write_bytes(data)
    (folder / "1.jpg").write_bytes(_png(fmt="JPEG"))
    (folder / "README.txt").write_text("ignored")
    (folder / ".DS_Store").write_bytes(b"ignored")


def test_bad_files_are_skipped_with_one_warning_each(tmp_path, caplog, monkeypatch):
    _stub(monkeypatch)
    folder = _write_media(tmp_path / "m", items_image=range(2, 21))
    _write_bad(folder)
    with caplog.at_level(logging.WARNING):
        vectors, report = multimodal_item_vectors(_data(), _text(), folder, tmp_path / "cache",
                                                  MultimodalConfig(epochs=2, dim=8, hidden=16), progress=False)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for name in BAD:
        lines = [w for w in warnings if str(folder / name) in w]
        assert len(lines) == 1, (name, lines)
    assert len(warnings) == len(BAD)  # nothing else warned: README.txt and dot files are ignored
    assert {s["file"] for s in report["skipped"]} == {str(folder / n) for n in BAD}
    reasons = {s["file"].rsplit("/", 1)[1]: s["reason"] for s in report["skipped"]}
    assert "too small" in reasons["22.png"] and "too short" in reasons["24.wav"]
    assert "unsupported extension" in reasons["25.mid"] and "no item" in reasons["999.png"]
    assert "video" in reasons["29.mp4"]
    assert "already has a image file (1.jpg)" in reasons["1.png"] and "empty" in reasons["27.png"]
    assert report["files"]["skipped"] == len(BAD)
    assert report["modalities"] == {"text": N_ITEMS, "image": 20, "audio": 15, "video": 2}
    assert vectors.shape == (N_ITEMS, 8) and np.isfinite(vectors).all()


def test_shapes_missing_modalities_and_report(tmp_path, monkeypatch):
    _stub(monkeypatch)
    folder = _write_media(tmp_path / "m")
    cfg = MultimodalConfig(epochs=3, dim=16, hidden=32, holdout=0.25)
    vectors, report = multimodal_item_vectors(_data(), _text(), folder, tmp_path / "cache", cfg, progress=False)
    assert vectors.shape == (N_ITEMS, 16) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)  # items 21-30: text only
    assert report["modalities"] == {"text": 30, "image": 20, "audio": 15, "video": 2}
    assert report["files"] == {"found": 37, "used": 37, "skipped": 0}
    r = report["retrieval"]
    assert r["held_out_items"] == 5 and len(report["held_out_tokens"]) == 5
    for phase in ("before", "after", "chance"):
        assert {"R@1", "R@10", "n"} <= set(r[phase]["text->image"]) and "image->text" in r[phase]
    assert report["encoding"]["image"]["encoded"] == 20 and report["train_seconds"] >= 0
    json.dumps(report)  # JSON-serialisable
    # the encoder outputs are cached by content: a second run encodes nothing and agrees
    again, rep2 = multimodal_item_vectors(_data(), _text(), folder, tmp_path / "cache", cfg, progress=False)
    assert rep2["encoding"]["image"] == rep2["encoding"]["image"] | {"encoded": 0, "cached": 20}
    np.testing.assert_allclose(again, vectors, atol=1e-6)
    assert sorted(p.name for p in (tmp_path / "cache" / "image").iterdir()) == ["keys.npy", "vectors.npy"]


def test_saved_heads_give_a_new_item_the_catalogue_vector(tmp_path, monkeypatch):
    """Heads saved with the vectors, loaded back: item_vector of an item's text and media
    features equals its row (item 5: image + audio; item 25: text only)."""
    from fpgarec.encoders.multimodal import item_vector, load_heads

    _stub(monkeypatch)
    folder = _write_media(tmp_path / "m")
    cfg = MultimodalConfig(epochs=3, dim=16, hidden=32, holdout=0.25)
    text = _text()
    vectors, report = multimodal_item_vectors(_data(), text, folder, tmp_path / "cache", cfg, progress=False,
                                              heads_out=tmp_path / "heads" / "mm")
    assert report["heads"] == str(tmp_path / "heads" / "mm.safetensors")
    model, loaded_cfg = load_heads(tmp_path / "heads" / "mm")
    assert loaded_cfg == cfg
    image = StubImage().encode([media.decode_image((folder / "5.png").read_bytes())])[0]
    audio = StubAudio().encode_one(*media.decode_audio((folder / "5.wav").read_bytes()))
    np.testing.assert_allclose(item_vector(model, text[4], {"image": image, "audio": audio}), vectors[4], atol=1e-6)
    np.testing.assert_allclose(item_vector(model, text[24], {}), vectors[24], atol=1e-6)
    with pytest.raises(FpgarecError, match="unknown modality"):
        item_vector(model, text[0], {"smell": image})
    with pytest.raises(FpgarecError, match="file not found"):
        load_heads(tmp_path / "heads" / "nope")


def test_missing_modality_vector_is_the_mean_of_the_aligned_ones():
    """v_i = normalize(mean of the modalities item i has): text only, text + image, all three."""
    import torch

    class Heads:  # embed(modality, x): fixed unit vectors per modality, whatever x
        table = {"text": [1.0, 0.0, 0.0], "image": [0.0, 1.0, 0.0], "video": [0.0, 1.0, 0.0], "audio": [0.0, 0.0, 1.0]}

        def embed(self, modality, x):
            return torch.tensor(self.table[modality]).repeat(len(x), 1)

    text = np.zeros((3, 4), np.float32)
    feats = {"image": (np.array([1, 2]), np.zeros((2, 5), np.float32)),
             "audio": (np.array([2]), np.zeros((1, 2), np.float32))}
    v, count = multimodal.fuse(Heads(), text, feats)
    np.testing.assert_array_equal(count, [1, 2, 3])
    np.testing.assert_allclose(v[0], [1, 0, 0])
    np.testing.assert_allclose(v[1], np.array([1, 1, 0]) / math.sqrt(2), rtol=1e-6)
    np.testing.assert_allclose(v[2], np.array([1, 1, 1]) / math.sqrt(3), rtol=1e-6)


def test_info_nce_hand_cases():
    import torch

    eye = torch.eye(2)
    # logits = I: each row's CE = -log(e / (e + 1)) = log(1 + e^-1), both directions alike
    assert float(info_nce(eye, eye, torch.tensor(1.0))) == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)
    # swapped pairs: logits [[0, 1], [1, 0]] -> log(1 + e)
    swapped = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert float(info_nce(eye, swapped, torch.tensor(1.0))) == pytest.approx(math.log(1 + math.e), rel=1e-6)
    # the temperature scales the logits: scale 3 on matched pairs -> log(1 + e^-3)
    assert float(info_nce(eye, eye, torch.tensor(3.0))) == pytest.approx(math.log(1 + math.exp(-3)), rel=1e-6)
    # asymmetric logits: the loss is the mean of the row-wise and column-wise CE
    za = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    zb = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # logits [[1, 0], [1, 0]]
    rows = 0.5 * (math.log(1 + math.exp(-1)) + math.log(1 + math.exp(1)))  # targets 0, 1
    cols = 0.5 * (math.log(2) + math.log(2))  # logitsᵀ [[1, 1], [0, 0]]
    assert float(info_nce(za, zb, torch.tensor(1.0))) == pytest.approx(0.5 * (rows + cols), rel=1e-6)


def test_recall_at_k_hand_case():
    q = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0]])
    k = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [1.0, -1.0]])
    # sims row 0: [1, 1, 0, 1]   own 1 -> 2 others >= : rank 2 (ties count against the query)
    # row 1: [0, .1, 1, -1]     own .1 -> rank 1
    # row 2: [1, 1.1, 1, 0]     own 1 -> rank 2 (1.1 and the tie at index 0)
    # row 3: [1, .9, -1, 2]     own 2 -> rank 0
    r = recall_at_k(q, k, ks=(1, 2, 3))
    assert r == {"R@1": 0.25, "R@2": 0.5, "R@3": 1.0}
    assert recall_at_k(np.eye(5), np.eye(5)) == {"R@1": 1.0, "R@10": 1.0}


def test_media_decoding_and_frame_sampling():
    limits = media.MediaLimits(video_frames=4)
    np.testing.assert_array_equal(media.frame_indices(8, 4), [1, 3, 5, 7])
    np.testing.assert_array_equal(media.frame_indices(2, 4), [0, 1])
    assert len(media.decode_video(_gif(frames=10), limits)) == 4
    y, rate = media.decode_wav(_wav(seconds=0.5, rate=8000))
    assert rate == 8000 and y.shape == (4000,) and y.dtype == np.float32 and np.abs(y).max() <= 1.0
    y, _ = media.decode_wav(_wav(seconds=3.0), media.MediaLimits(max_audio_seconds=1.0))
    assert y.shape == (16000,)  # cut, not skipped
    assert media.decode_image(_png(size=(40, 20))).size == (40, 20)
    with pytest.raises(media.MediaSkipped, match="too large"):
        media.decode_image(_png(size=(300, 300)), media.MediaLimits(max_image_pixels=10_000))


def test_compressed_audio_decodes_like_the_wav():
    """FLAC is lossless: its stereo decode equals the mono WAV's samples exactly; mp3 keeps the
    length (up to the encoder's padding) and the 440 Hz tone."""
    want, rate = media.decode_audio(_wav())
    got, got_rate = media.decode_audio(_coded_audio("flac", "flac"))
    assert got_rate == rate and np.array_equal(got, want)
    y, r = media.decode_audio(_coded_audio("libmp3lame", "mp3", rate=16000))
    assert r == 16000 and abs(len(y) - len(want)) <= 2000
    spectrum = np.abs(np.fft.rfft(y[:8000]))
    assert abs(np.argmax(spectrum) * r / 8000 - 440) <= 4
    with pytest.raises(media.MediaSkipped, match="too short"):
        media.decode_audio(_coded_audio("flac", "flac", seconds=0.02))
    with pytest.raises(media.MediaSkipped, match="audio"):
        media.decode_audio(_png())


@pytest.mark.parametrize(("codec", "fmt"), [("mpeg4", "mp4"), ("h264", "matroska"), ("libvpx-vp9", "webm"),
                                            ("mpeg4", "avi")])
def test_container_video_frames_are_sampled_at_segment_centres(codec, fmt):
    """30 frames at 10 fps, frame i red = 8 i: 4 frames at t = 0.375, 1.125, 1.875, 2.625 s are
    frames 4, 12, 19, 27 (the first at or after each time), red 32, 96, 152, 216 up to the codec's loss."""
    frames = media.decode_video(_video(codec=codec, fmt=fmt), media.MediaLimits(video_frames=4))
    red = [float(np.asarray(f)[..., 0].mean()) for f in frames]
    assert len(frames) == 4 and frames[0].size == (64, 48) and frames[0].mode == "RGB"
    np.testing.assert_allclose(red, [32, 96, 152, 216], atol=6)
    with pytest.raises(media.MediaSkipped, match="too small"):
        media.decode_video(_video(size=(16, 8)), media.MediaLimits(min_image_side=10))
    with pytest.raises(media.MediaSkipped, match="video"):
        media.decode_video(b"\x00\x00\x00\x18ftypmp42" + bytes(100))


def test_user_mistakes_are_one_line_errors(tmp_path, monkeypatch):
    _stub(monkeypatch)
    with pytest.raises(FpgarecError, match="media folder not found"):
        multimodal_item_vectors(_data(), _text(), tmp_path / "nope", tmp_path / "c", progress=False)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "5.txt").write_text("x")
    with pytest.raises(FpgarecError, match="no usable media file"):
        multimodal_item_vectors(_data(), _text(), tmp_path / "empty", tmp_path / "c", progress=False)
    with pytest.raises(FpgarecError, match="one row per item"):
        multimodal_item_vectors(_data(), _text(n=5), tmp_path / "empty", tmp_path / "c", progress=False)


def test_generated_media_is_labelled_deterministic_and_readable(tmp_path):
    texts = TEXTS[:10]
    tokens = [str(i + 1) for i in range(10)]
    m1 = generate_media(tokens, texts, tmp_path / "g1", n_items=8, seed=3, n_videos=2)
    m2 = generate_media(tokens, texts, tmp_path / "g2", n_items=8, seed=3, n_videos=2)
    assert m1 == m2 and m1["synthetic"] is True and len(m1["items"]) == 8
    readme = (tmp_path / "g1" / "README.txt").read_text()
    assert readme.startswith("GENERATED SYNTHETIC MEDIA") and "NOT REAL" in readme
    assert is_generated_folder(tmp_path / "g1")
    for p in (tmp_path / "g1").iterdir():
        if p.suffix in (".png", ".wav", ".gif"):
            assert p.read_bytes() == (tmp_path / "g2" / p.name).read_bytes()
    scan = media.scan_media(tmp_path / "g1", tokens)
    assert not scan.skipped and len(scan.by_modality("video")) == 2
    for f in scan.files:  # everything it writes decodes
        data = f.path.read_bytes()
        {"image": media.decode_image, "audio": media.decode_wav, "video": media.decode_video}[f.modality](data)
    # it refuses to write into a folder it did not make
    other = tmp_path / "mine"
    other.mkdir()
    (other / "1.png").write_bytes(_png())
    with pytest.raises(FpgarecError, match="not a generated-media folder"):
        generate_media(tokens, texts, other, n_items=2)


def test_item_metadata():
    meta = item_metadata("movie title: Toy Story; release year: 1995; class: Animation Children's Comedy")
    assert meta == item_metadata("movie title: Toy Story; release year: 1995; class: Animation Children's Comedy")
    assert meta.title == "Toy Story" and meta.year == 1995
    assert meta.genres == ("Animation", "Children's", "Comedy") and meta.slots == (3, 4, 5)
    assert item_metadata("name: X").genres == ("unknown",) and item_metadata("name: X").u == 0.5


def test_real_encoders_shapes(tmp_path):
    """The bundled EfficientNet-Lite0 and aiSFX weights load offline and give 1280-d / 512-d."""
    from fpgarec.encoders.audio import AudioEncoder
    from fpgarec.encoders.image import ImageEncoder

    img = ImageEncoder(batch_size=2)
    x = img.encode([media.decode_image(_png(size=(64, 48))), media.decode_image(_png(colour=(0, 0, 255)))])
    assert x.shape == (2, 1280) and np.isfinite(x).all() and not np.allclose(x[0], x[1])
    assert img.encode_video(media.decode_video(_gif())).shape == (1280,)
    assert img.encode_video(media.decode_video(_video())).shape == (1280,)
    a = AudioEncoder()
    e1 = a.encode_one(*media.decode_wav(_wav(freq=300)))
    e2 = a.encode_one(*media.decode_wav(_wav(seconds=3.0, rate=44100, freq=3000)))
    assert e1.shape == e2.shape == (512,) and not np.allclose(e1, e2)


def _tiny_dataset(folder):
    folder.mkdir()
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    inter += [f"{u}\t{i + 1}\t4\t{1000 + 10 * u + i}" for u in range(3) for i in range(N_ITEMS) if (i + u) % 2 == 0]
    (folder / "tiny.inter").write_text("\n".join(inter) + "\n")
    item = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    item += [f"{i + 1}\tFilm {i}\t{1930 + 2 * i}\t{['Drama', 'Comedy', 'Action'][i % 3]}" for i in range(N_ITEMS)]
    (folder / "tiny.item").write_text("\n".join(item) + "\n")
    return folder


def test_command_line_prints_one_json_line(tmp_path, monkeypatch, capsys):
    """``fpgarec study multimodal``."""
    import fpgarec.encoders.text as text_encoder
    from fpgarec.cli import main

    _stub(monkeypatch)
    monkeypatch.setattr(text_encoder, "encode_texts", lambda texts, cache, show_progress=True: _text(len(texts)))
    data = _tiny_dataset(tmp_path / "data")
    args = ["--media", str(tmp_path / "media"), "--generate", "24", "--data", str(data), "--cache",
            str(tmp_path / "cache"), "--epochs", "3", "--no-progress", "--report", str(tmp_path / "r.json")]
    assert main(["study", "multimodal", *args]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert out["generated"] is True and out["items"] == N_ITEMS and out["held_out_items"] >= 2
    assert {"text->image", "image->text", "text->audio", "audio->text"} <= set(out["after"])
    assert set(out["before"]) == set(out["after"]) and "oracle_R@1_same_metadata" in out
    assert json.loads((tmp_path / "r.json").read_text())["files"]["skipped"] == 0
    # a user mistake: one line on stderr, exit code 2
    assert main(["study", "multimodal", "--media", str(tmp_path / "nothing"), "--data", str(data), "--cache",
                 str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("fpgarec: error: ") and "media folder not found" in err[-1]
