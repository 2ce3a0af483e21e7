"""Whole-design RTL: stitching, Verilator simulation and Yosys synthesis of a bundle (open tools only)."""
