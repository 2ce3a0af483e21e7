"""The build flow on a small student: every step runs and is checked, the bundle validates,
bad input is refused with a one-line message."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest


def test_every_step_ran_and_saved_its_model(small_bundle):
    from fpgarec.compile.steps import STEPS

    bundle, cfg = small_bundle
    inter = cfg.build_dir / "intermediate_models"
    for step in STEPS:
        assert (inter / f"{step.__name__}.onnx").is_file(), step.__name__


def test_bundle_validates_and_describes_the_design(small_bundle):
    from fpgarec.runtime.bundle import load_bundle

    bundle, _ = small_bundle
    b = load_bundle(bundle)
    m = b.manifest
    assert m["design"] == "small" and m["board"] == "pynq-z2" and m["part"] == "xc7z020clg400-1"
    assert m["clock_mhz"] == 100.0
    assert [layer["op"] for layer in m["layers"]] == [
        "DuplicateStreams", "Lookup", "Lookup", "ModalityFusion", "NeighborAggregate", "Thresholding", "MVAU",
        "Thresholding", "MVAU", "LabelSelect"]
    by_op = {layer["op"]: layer for layer in m["layers"]}
    # every layer is an RTL layer: FINN's MVAU_rtl / Thresholding_rtl and the kernels' _rtl ops
    assert all(layer["impl"] == "rtl" for layer in m["layers"]), [layer["name"] for layer in m["layers"]]
    assert {"DuplicateStreams_rtl_0", "Lookup_rtl_0", "Lookup_rtl_1", "LabelSelect_rtl_0"} <= {
        layer["name"] for layer in m["layers"]}
    assert by_op["LabelSelect"]["attrs"]["NumValidLabels"] == 200  # the padded labels are never selected
    dup = by_op["DuplicateStreams"]["outputs"]
    assert by_op["NeighborAggregate"]["inputs"] == [by_op["ModalityFusion"]["outputs"][0], dup[2]]
    assert by_op["NeighborAggregate"]["attrs"]["NullId"] == 200 and by_op["NeighborAggregate"]["attrs"]["Mode"] == "mean"
    assert m["model"]["padding"] == {"scheme": "null", "null_id": 200}
    assert m["model"]["n_items"] == 200 and m["model"]["n_labels"] == 256  # padded to a multiple of 128
    assert m["io"]["input"]["name"] == "ids" and m["io"]["input"]["datatype"] == "UINT8"
    assert m["io"]["input"]["shape_normal"] == [1, 4]
    assert m["io"]["output"]["shape_normal"] == [1, 10]
    assert m["dma"] == {"input": ["idma0"], "output": ["odma0"]}
    assert m["bitstream"]["built"] is False and m["bitstream"]["reason"]
    assert set(m["folding"]) == {layer["name"] for layer in m["layers"]}
    for rel, info in m["files"].items():
        assert len(info["sha256"]) == 64
        assert not rel.endswith((".pkl", ".pickle"))
    assert all(rel.endswith(".npy") for layer in m["layers"] for rel in layer["params"].values())
    e = m["estimates"]
    assert e["latency_us"] == pytest.approx(e["latency_cycles"] / 100.0)
    assert e["queries_per_s"] == pytest.approx(100e6 / e["max_cycles"])
    assert e["latency_us"] <= 1.0 and e["queries_per_s"] >= 1e6  # the config's goals
    assert e["macs_per_query"] == 16 * 16 + 16 * 256
    assert "estimates" in e["note"]


def test_report_text_and_json(small_bundle, tmp_path):
    from fpgarec.compile.report import design_summary, report

    bundle, _ = small_bundle
    text = report(bundle, tmp_path)
    assert "latency" in text and "queries/s" in text and "MAC bound" in text and "estimates" in text
    js = json.loads((tmp_path / "report.json").read_text())
    assert js["board"] == "pynq-z2" and js["resources"]["available"]["DSP"] == 220
    from fpgarec.runtime.bundle import load_bundle

    assert report(bundle) == text  # the same text again; the bundle is not written
    load_bundle(bundle)
    d = design_summary(bundle, 10, 0)
    assert set(d) == {"board", "latency_us", "queries_per_s", "resources", "bundle", "bitexact_queries",
                      "bitexact_mismatches", "estimate_source"}
    assert set(d["resources"]["used"]) == {"LUT", "FF", "BRAM18", "URAM", "DSP"}


def test_no_vivado_stops_after_codegen_with_one_line(small_student, tmp_path, monkeypatch, caplog):
    from fpgarec.compile.flow import build
    from fpgarec.runtime.bundle import load_bundle
    from small_design import small_build_config

    monkeypatch.delenv("XILINX_VIVADO", raising=False)
    folding = tmp_path / "folding.json"
    folding.write_text(json.dumps({"Defaults": {}, "Thresholding_rtl_0": {"PE": 2}}))
    cfg = small_build_config(tmp_path, vivado="auto", folding_file=folding, design="novivado")
    with caplog.at_level(logging.INFO, logger="fpgarec"):
        bundle = build(small_student[1], cfg)
    lines = [r.getMessage() for r in caplog.records if "Vivado" in r.getMessage()]
    assert len(lines) == 1 and "XILINX_VIVADO" in lines[0] and "code generation" in lines[0]
    m = load_bundle(bundle).manifest
    assert m["bitstream"]["built"] is False and "XILINX_VIVADO" in m["bitstream"]["reason"]
    assert m["folding"]["Thresholding_rtl_0"]["PE"] == 2  # the folding file wins


def test_a_step_that_changes_results_is_named(small_student, tmp_path):
    from qonnx.core.modelwrapper import ModelWrapper

    from fpgarec.compile import checks, steps
    from fpgarec.compile.export import export_qonnx, read_metadata
    from fpgarec.compile.flow import run_steps
    from small_design import small_build_config

    student, _ = small_student
    cfg = small_build_config(tmp_path)
    model = ModelWrapper(str(export_qonnx(student, tmp_path / "s.onnx")))
    meta = read_metadata(model)

    def step_break_thresholds(model, cfg):
        node = model.get_nodes_by_op_type("MultiThreshold")[0]
        thr = model.get_initializer(node.input[1])
        model.set_initializer(node.input[1], thr + 3)
        return model

    q = checks.sample_queries(200, 4, 6)
    with pytest.raises(checks.StepCheckError) as err:
        run_steps(model, cfg, [steps.step_qonnx_to_finn, steps.step_insert_topk, steps.step_streamline,
                               step_break_thresholds], tmp_path / "w", q, meta["score_scale"], 200)
    assert err.value.step == "step_break_thresholds"
    assert err.value.op_type == "MultiThreshold" and err.value.node in str(err.value)


def test_unmappable_op_is_named_with_the_supported_set(small_student, tmp_path):
    from onnx import helper
    from qonnx.core.modelwrapper import ModelWrapper

    from fpgarec.compile.export import export_qonnx
    from fpgarec.compile.flow import build
    from fpgarec.compile.steps import UnsupportedOpError

    model = ModelWrapper(str(export_qonnx(small_student[0], tmp_path / "s.onnx")))
    relu = model.get_nodes_by_op_type("Relu")[0]
    idx = list(model.graph.node).index(relu)
    odd = helper.make_node("Elu", [relu.input[0]], [relu.output[0]], name="OddActivation")
    model.graph.node.remove(relu)
    model.graph.node.insert(idx, odd)
    model.model.opset_import[0].version = 13
    bad = tmp_path / "bad.onnx"
    model.save(str(bad))
    from small_design import small_build_config

    with pytest.raises(UnsupportedOpError) as err:
        build(bad, small_build_config(tmp_path, design="bad"))
    msg = str(err.value)
    assert "OddActivation" in msg and "Elu" in msg and "supported ops" in msg and "NeighborAggregate" in msg


def test_design_that_does_not_fit_is_refused_before_codegen(small_student, tmp_path):
    from fpgarec.compile.fit import DesignDoesNotFitError
    from fpgarec.compile.flow import build
    from small_design import small_build_config

    cfg = small_build_config(tmp_path, max_utilization=0.005, design="toobig")
    with pytest.raises(DesignDoesNotFitError) as err:
        build(small_student[1], cfg)
    msg = str(err.value)
    assert "does not fit pynq-z2" in msg and "target_qps" in msg and "folding" in msg
    assert not (cfg.build_dir / "intermediate_models" / "step_hw_codegen.onnx").exists()


def test_unknown_board_lists_the_known_ones(tmp_path):
    from fpgarec.compile.boards import UnknownBoardError, known_boards, load_board
    from fpgarec.compile.config import BuildConfig
    from fpgarec.compile.flow import build

    with pytest.raises(UnknownBoardError) as err:
        load_board("zedboard")
    for name in ("pynq-z1", "pynq-z2", "zcu104", "kv260", "alveo-u250"):
        assert name in str(err.value)
        assert name in known_boards()
    with pytest.raises(UnknownBoardError):
        build(tmp_path / "x.onnx", BuildConfig(board="nope", output_dir=tmp_path))


@pytest.mark.parametrize("name,part,dsp", [
    ("pynq-z1", "xc7z020clg400-1", 220), ("pynq-z2", "xc7z020clg400-1", 220),
    ("zcu104", "xczu7ev-ffvc1156-2-e", 1728), ("kv260", "xck26-sfvc784-2LV-c", 1248),
    ("alveo-u250", "xcu250-figd2104-2L-e", 12288),
])
def test_board_files(name, part, dsp):
    from fpgarec.compile.boards import RESOURCE_KEYS, load_board

    b = load_board(name.upper())
    assert b.part == part and b.resources["DSP"] == dsp and set(b.resources) == set(RESOURCE_KEYS)
    assert b.clock_mhz > 0 and b.memory["size_mb"] > 0 and b.shell.value in ("zynq-iodma", "vitis-alveo")


def test_folding_balance_prefers_dsp_packing(small_bundle):
    """On DSP48E1 the RTL MVAU packs 4 PEs per DSP: balanced folding uses PE multiples of 4."""
    from fpgarec.runtime.bundle import load_bundle

    m = load_bundle(small_bundle[0]).manifest
    for layer in m["layers"]:
        if layer["op"] == "MVAU" and layer["impl"] == "rtl":
            assert layer["attrs"]["PE"] % 4 == 0 or layer["attrs"]["PE"] == layer["attrs"]["MH"]


@pytest.mark.vivado
def test_vivado_builds_a_bitstream(small_student, tmp_path):
    from fpgarec.compile.flow import build
    from fpgarec.runtime.bundle import load_bundle
    from small_design import small_build_config

    bundle = build(small_student[1], small_build_config(tmp_path, vivado="auto", design="vivado"))
    m = load_bundle(bundle).manifest
    assert m["bitstream"]["built"] is True
    assert any(f.endswith(".bit") for f in m["bitstream"]["files"])
    assert np.all([f in m["files"] for f in m["bitstream"]["files"]])


def test_fold_kernels_meets_the_target_like_finns_setfolding():
    """The kernels' _rtl layers (unknown to FINN's SetFolding) get the smallest PE meeting the
    cycle target; a top-k layer that cannot meet it gets the smallest PE with its fewest cycles."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    from fpgarec.compile._finn import register_kernels
    from fpgarec.compile.folding import fold_kernels

    register_kernels()
    rtl = {"domain": "finn.custom_op.fpgadataflow.rtl", "backend": "fpgadataflow"}
    dup = helper.make_node("DuplicateStreams_rtl", ["ids"], ["a", "b"], name="dup", NumChannels=20, PE=1,
                           NumOutputStreams=2, inputDataType="UINT8", **rtl)
    top = helper.make_node("LabelSelect_rtl", ["s"], ["t"], name="top", Labels=256, PE=1, K=10,
                           inputDataType="INT12", **rtl)
    g = helper.make_graph([dup, top], "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
                                           for n, s in (("ids", [1, 20]), ("s", [1, 256]))],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
                           for n, s in (("a", [1, 20]), ("b", [1, 20]), ("t", [1, 10]))])
    model = ModelWrapper(qonnx_make_model(g))
    model.set_tensor_datatype("s", DataType["INT12"])
    assert fold_kernels(model, 64) == {"dup": 1, "top": 4}  # 20 <= 64; 256/4 = 64
    # max(256/PE, 2K + D) is smallest at PE 16: max(16, 20 + 4) = 24 (D = clog2 PE grows beyond)
    assert fold_kernels(model, 5) == {"dup": 4, "top": 16}


@pytest.mark.vivado
def test_vivado_stitches_the_kernels_rtl_layers(small_student, tmp_path):
    """With Vivado, FINN's own stitching (step_create_stitched_ip) builds the same ``_rtl``
    layers the open flow simulates: every layer of the manifest is ``rtl`` and the stitched IP
    project holds each kernel's core SystemVerilog."""
    from fpgarec.compile.flow import build
    from fpgarec.runtime.bundle import load_bundle
    from kernels import hwtools
    from small_design import small_build_config

    cfg = small_build_config(tmp_path, vivado="auto", design="stitch", exclude_seen=True)
    bundle = build(small_student[1], cfg)
    m = load_bundle(bundle).manifest
    assert {layer["impl"] for layer in m["layers"]} == {"rtl"}, [(x["name"], x["impl"]) for x in m["layers"]]
    stitched = list((tmp_path / "work").rglob("stitched_ip"))
    assert stitched, "FINN wrote no stitched_ip folder"
    files = {p.name for d in stitched for p in d.rglob("*.sv")}
    for core in ("topk_select", "lookup_rom", "axis_dup", "modality_fusion", "neighbor_aggregate"):
        assert hwtools.SOURCES[core][0].name in files, core
