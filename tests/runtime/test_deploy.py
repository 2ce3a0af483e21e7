"""``fpgarec deploy``: the folder runs on its own (numpy + stdlib + itself), refuses wrong input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bitstreams" / "student_w4_pynq-z2"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    from fpgarec.deploy import deploy

    return deploy(BUNDLE, "pynq-z2", tmp_path_factory.mktemp("deploy") / "student_w4")


@pytest.fixture(scope="module")
def numpy_only(tmp_path_factory):
    """A folder holding only (links to) numpy: with ``python -S`` and this as PYTHONPATH, the
    interpreter sees the standard library, numpy and nothing else (no editable fpgarec)."""
    folder = tmp_path_factory.mktemp("numpy_only")
    site = Path(np.__file__).resolve().parent.parent
    for name in ("numpy", "numpy.libs"):
        if (site / name).exists():
            (folder / name).symlink_to(site / name)
    return folder


def _run(deployed: Path, numpy_only: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(numpy_only)
    return subprocess.run([sys.executable, "-S", str(deployed / "run.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_layout_and_hashes(deployed):
    info = json.loads((deployed / "deploy.json").read_text())
    assert info["design"] == "student_w4_pynq-z2" and info["board"] == "pynq-z2"
    assert info["bitstream_built"] is False
    for rel in ("run.py", "README.md", "lib/fpgarec/__init__.py", "lib/fpgarec/errors.py",
                "lib/fpgarec/runtime/pynq_backend.py", "lib/fpgarec/runtime/pynq_overlay.py",
                "lib/fpgarec/runtime/packing.py",
                "lib/kernels/_params.py", "lib/kernels/neighbor_aggregate/golden.py",
                "bundle/student_w4_pynq-z2/manifest.json"):
        assert rel in info["files"], rel
    assert not any("brevitas" in rel or "finn_op" in rel or "__pycache__" in rel for rel in info["files"])
    from fpgarec.runtime.bundle import load_bundle, sha256_file

    for rel, digest in info["files"].items():
        assert sha256_file(deployed / rel) == digest
    load_bundle(deployed / "bundle" / "student_w4_pynq-z2")
    readme = (deployed / "README.md").read_text()
    assert "not built" in readme and "run.py --emulate" in readme


def test_run_script_is_self_contained(deployed, numpy_only, tmp_path):
    out = _run(deployed, numpy_only, "--emulate", "--queries", "200", "--check", "--out", "top.npy", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["backend"] == "emulation" and result["queries"] == 200
    assert result["bitexact_vs_emulation"] is True
    assert Path(result["runtime"]).resolve() == (deployed / "lib" / "fpgarec").resolve()
    top = np.load(tmp_path / "top.npy")
    from fpgarec.runtime.emulation import EmulationBackend

    ids = np.random.default_rng(0).integers(0, 1682, size=(200, 20))
    np.testing.assert_array_equal(top, EmulationBackend(BUNDLE).run(ids))


def test_run_script_on_the_fpga_path_without_pynq_is_one_line(deployed, numpy_only, tmp_path):
    out = _run(deployed, numpy_only, "--queries", "4", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("run.py: error: ")
    assert "pynq package is not installed" in out.stderr or "has no bitstream" in out.stderr


def test_run_script_answers_users_and_items_by_the_data_sets_ids(deployed, numpy_only, tmp_path):
    """``--history H --user ID --items ID,ID``: data-set ids in, item ids and titles out; an
    unknown id is one line naming it."""
    from fpgarec.runtime.accelerator import Accelerator
    from fpgarec.runtime.ids import IdMap
    from fpgarec.runtime.sampler import History

    rng = np.random.default_rng(3)
    ids = IdMap([f"customer_{u}" for u in range(5)], [f"sku-{i:04d}" for i in range(1682)],
                [f"Title {i}" if i % 2 else "" for i in range(1682)])
    history = History.from_lists([rng.integers(0, 1682, 30) for _ in range(5)], 1682, ids=ids)
    path = history.save(tmp_path / "history.npz")
    out = _run(deployed, numpy_only, "--emulate", "--history", str(path), "--user", "customer_2",
               "--items", "sku-0005,sku-0017", "--k", "4", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    want = Accelerator(BUNDLE, "emulation", history=history)
    assert result["ids"] == "dataset" and result["answers"][0]["user"] == "customer_2"
    assert [x["id"] for x in result["answers"][0]["items"]] == want.recommend(users=["customer_2"], k=4)[0]
    assert [x["id"] for x in result["answers"][1]["items"]] == want.recommend(items=[["sku-0005", "sku-0017"]],
                                                                             k=4)[0]
    first = result["answers"][0]["items"][0]
    assert first["title"] == (f"Title {int(first['id'][4:])}" if int(first["id"][4:]) % 2 else None)
    assert "user customer_2 -> sku-" in out.stdout
    out = _run(deployed, numpy_only, "--emulate", "--history", str(path), "--items", "sku-0005,sku-9999",
               cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.strip().splitlines()[-1] == "run.py: error: unknown item 'sku-9999'"
    out = _run(deployed, numpy_only, "--emulate", "--user", "customer_2", cwd=tmp_path)
    assert out.returncode == 2 and "--user needs --history" in out.stderr


def test_tampered_deployed_bundle_is_refused(deployed, numpy_only, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(deployed, copy)
    weights = next((copy / "bundle" / "student_w4_pynq-z2" / "weights").glob("MVAU*.npy"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    out = _run(copy, numpy_only, "--emulate", cwd=tmp_path)
    assert out.returncode == 2 and "tampered" in out.stderr


def test_wrong_board_and_foreign_folder_are_refused(tmp_path):
    from fpgarec.deploy import DeployError, deploy

    with pytest.raises(DeployError, match="built for board 'pynq-z2', not 'pynq-z1'"):
        deploy(BUNDLE, "pynq-z1", tmp_path / "x")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DeployError, match="not an earlier deploy"):
        deploy(BUNDLE, "pynq-z2", foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_redeploy_replaces_an_earlier_deploy(tmp_path):
    from fpgarec.deploy import deploy

    out = deploy(BUNDLE, "pynq-z2", tmp_path / "d")
    (out / "stale.txt").write_text("old")
    deploy(BUNDLE, "pynq-z2", out)
    assert not (out / "stale.txt").exists() and (out / "run.py").is_file()
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())


def test_module_level_heavy_import_is_refused(tmp_path):
    from fpgarec.deploy import DeployError, check_self_contained

    lib = tmp_path / "lib"
    (lib / "fpgarec" / "runtime").mkdir(parents=True)
    (lib / "fpgarec" / "__init__.py").write_text("")
    (lib / "fpgarec" / "runtime" / "__init__.py").write_text("import json\nimport numpy as np\n")
    (lib / "fpgarec" / "runtime" / "lazy.py").write_text("def f():\n    import pynq\n    import torch\n")
    assert check_self_contained(lib) == ["fpgarec/runtime/lazy.py:3: imports torch inside a function; it is not deployed"]
    (lib / "fpgarec" / "runtime" / "bad.py").write_text("from fpgarec.compile import flow\n")
    with pytest.raises(DeployError, match="bad.py:1: imports fpgarec.compile"):
        check_self_contained(lib)


def test_cli_deploy(tmp_path):
    from fpgarec.cli import main

    assert main(["deploy", str(BUNDLE), "--board", "pynq-z2", "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "run.py").is_file()
    assert main(["deploy", str(BUNDLE), "--board", "zcu104", "--out", str(tmp_path / "z")]) == 2


def test_run_script_accepts_the_null_id_of_null_padding(deployed, numpy_only, tmp_path):
    """A user with fewer than K items is padded with the null id n_items (1682): run.py takes it."""
    ids = np.random.default_rng(1).integers(0, 1682, size=(3, 20))
    ids[0, 5:] = 1682
    ids[1, :] = 1682
    np.save(tmp_path / "ids.npy", ids)
    out = _run(deployed, numpy_only, "--emulate", "--ids", "ids.npy", "--out", "top.npy", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    from fpgarec.runtime.emulation import EmulationBackend

    np.testing.assert_array_equal(np.load(tmp_path / "top.npy"), EmulationBackend(BUNDLE).run(ids))
    np.save(tmp_path / "ids.npy", ids + 1)  # 1683 is no id at all
    out = _run(deployed, numpy_only, "--emulate", "--ids", "ids.npy", cwd=tmp_path)
    assert out.returncode == 2 and "ids must lie in [0, 1682]" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(("setup", "args", "expected"), [
    ("empty", ("--ids", "ids.npy"), "holds no queries"),
    (None, ("--out", "missing/top.npy"), "does not exist"),
    (None, ("--batch", "0"), "--batch must be at least 1"),
    (None, ("--queries", "0"), "--queries must be at least 1"),
    (None, ("--timeout", "0"), "--timeout must be positive"),
    (None, ("--k", "0"), "--k applies to --user/--items answers"),  # was ignored without a word
    (None, ("--k", "5", "--queries", "3"), "--k applies to --user/--items answers"),
])
def test_run_script_bad_options_are_one_line(deployed, numpy_only, tmp_path, setup, args, expected):
    if setup == "empty":
        np.save(tmp_path / "ids.npy", np.zeros((0, 20), dtype=np.int64))
    out = _run(deployed, numpy_only, "--emulate", *args, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("run.py: error: ") and expected in last, out.stderr


def test_run_script_without_numpy_is_one_line(deployed, tmp_path):
    """``python -S -I``: the standard library only (no site-packages, no PYTHON* variables)."""
    proc = subprocess.run([sys.executable, "-S", "-I", str(deployed / "run.py"), "--emulate"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "numpy is required: pip install numpy"


def test_deploy_refuses_a_bundle_that_fails_the_checks(tmp_path):
    """Thresholds of shape (1, 3) for a 15-step layer, re-hashed: a loadable bundle used to be
    deployed and its run.py crashed (or answered wrongly) on the board."""
    from fpgarec.deploy import deploy
    from fpgarec.errors import FpgarecError
    from fpgarec.runtime.bundle import MANIFEST, sha256_file

    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLE, bundle)
    rel = "weights/Thresholding_rtl_1.thresholds.npy"
    np.save(bundle / rel, np.load(bundle / rel)[:1, :3])
    m = json.loads((bundle / MANIFEST).read_text())
    m["files"][rel] = {"bytes": (bundle / rel).stat().st_size, "sha256": sha256_file(bundle / rel)}
    (bundle / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(FpgarecError, match=r"Thresholding_rtl_1.thresholds.npy.*shape \(1, 3\)"):
        deploy(bundle, "pynq-z2", tmp_path / "out")
    assert not (tmp_path / "out").exists()
