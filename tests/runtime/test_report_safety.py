"""``fpgarec report`` reads a bundle and never writes into it; the commands that do write a bundle
(``fpgarec sim --record``, the builder's report) never write through a symlink."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from fpgarec.runtime.bundle import MANIFEST, BundleError, load_bundle, sha256_file, stamp_manifest

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bitstreams" / "student_w4_pynq-z2"


@pytest.fixture
def bundle(tmp_path):
    dst = tmp_path / "bundle"
    shutil.copytree(BUNDLE, dst)
    return dst


def _snapshot(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): (p.is_symlink(), sha256_file(p) if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def _link_report_outside(bundle: Path, tmp_path: Path) -> Path:
    """reports/report.json as a symlink to a file outside the bundle, listed with that file's
    size and sha256 (so the bundle loads); returns that file."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (bundle / "reports" / "report.json").unlink()
    (bundle / "reports" / "report.json").symlink_to(victim)
    m = json.loads((bundle / MANIFEST).read_text())
    m["files"]["reports/report.json"] = {"bytes": victim.stat().st_size, "sha256": sha256_file(victim)}
    (bundle / MANIFEST).write_text(json.dumps(stamp_manifest(m)))
    load_bundle(bundle)
    return victim


def test_report_prints_and_writes_nothing_into_the_bundle(bundle, tmp_path, capsys):
    from fpgarec.cli import main

    victim = _link_report_outside(bundle, tmp_path)
    before = _snapshot(bundle)
    assert main(["report", str(bundle)]) == 0
    assert "latency" in capsys.readouterr().out
    assert _snapshot(bundle) == before
    assert victim.read_text() == "precious\n"


def test_report_on_an_edited_manifest_leaves_the_bundle_loadable(bundle, capsys):
    """An edit the report shows (here the measured latency) used to be written into
    reports/report.txt, whose listed byte count then refused every later load."""
    from fpgarec.cli import main

    m = json.loads((bundle / MANIFEST).read_text())
    m["measured"]["simulation"]["latency_us"] = 123456.5
    (bundle / MANIFEST).write_text(json.dumps(stamp_manifest(m)))
    assert main(["report", str(bundle)]) == 0
    assert "123456.50 us" in capsys.readouterr().out
    load_bundle(bundle)


def test_report_out_writes_there_and_refuses_symlinks_and_the_bundle(bundle, tmp_path, capsys):
    from fpgarec.cli import main

    out = tmp_path / "out"
    assert main(["report", str(bundle), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert (out / "report.txt").read_text() == text
    assert json.loads((out / "report.json").read_text())["design"] == "student_w4_pynq-z2"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (out / "report.json").unlink()
    (out / "report.json").symlink_to(victim)
    assert main(["report", str(bundle), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "symlink" in err and "Traceback" not in err
    assert victim.read_text() == "precious\n"
    linked = tmp_path / "linked"
    linked.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    assert main(["report", str(bundle), "--out", str(linked)]) == 2
    assert not any((tmp_path / "elsewhere").iterdir())
    before = _snapshot(bundle)
    assert main(["report", str(bundle), "--out", str(bundle / "reports")]) == 2
    assert "never writes into a bundle" in capsys.readouterr().err
    assert _snapshot(bundle) == before


def test_report_of_unreportable_estimates_is_one_line(bundle, capsys):
    from fpgarec.cli import main

    m = json.loads((bundle / MANIFEST).read_text())
    del m["estimates"]["latency_us"]
    (bundle / MANIFEST).write_text(json.dumps(stamp_manifest(m)))
    assert main(["report", str(bundle)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fpgarec: error: ") and "manifest.json" in err and "\n" not in err


def _fake_measurement(manifest: dict):
    sim = manifest["measured"]["simulation"]
    res = SimpleNamespace(fifo_depths=manifest["rtl"]["fifo_depths"], layer_cycles=sim["layer_cycles"],
                          fifo_peaks=sim.get("fifo_peaks", {}), build_seconds=1.0,
                          summary=lambda: {k: v for k, v in sim.items()
                                           if k not in ("source", "layer_cycles", "fifo_peaks", "build_seconds")})
    return res


def test_sim_record_never_writes_through_a_symlink(bundle, tmp_path):
    from fpgarec.hwsim.measure import _record

    m = load_bundle(bundle).manifest
    victim = _link_report_outside(bundle, tmp_path)
    with pytest.raises(BundleError, match="symlink"):
        _record(bundle, m, _fake_measurement(m), None)
    assert victim.read_text() == "precious\n"


def test_sim_record_replaces_files_atomically(bundle, tmp_path):
    """A symlinked manifest.json is replaced by a file, not written through; the bundle loads."""
    from fpgarec.hwsim.measure import _record

    m = load_bundle(bundle).manifest
    outside = tmp_path / "manifest_elsewhere.json"
    shutil.move(bundle / MANIFEST, outside)
    (bundle / MANIFEST).symlink_to(outside)
    before = outside.read_text()
    with pytest.raises(BundleError, match="symlink"):
        _record(bundle, m, _fake_measurement(m), None)
    assert outside.read_text() == before
    (bundle / MANIFEST).unlink()
    shutil.move(outside, bundle / MANIFEST)
    _record(bundle, m, _fake_measurement(m), None)
    assert not any(p.name.endswith(".tmp") for p in bundle.rglob("*"))
    load_bundle(bundle)


def test_write_text_safely_refuses_a_symlinked_folder(tmp_path):
    from fpgarec.runtime.bundle import write_text_safely

    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    with pytest.raises(BundleError, match="symlink"):
        write_text_safely(tmp_path / "link" / "a.txt", "x")
    assert write_text_safely(tmp_path / "real" / "a.txt", "x").read_text() == "x"
