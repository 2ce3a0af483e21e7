"""fpgarec: FPGA hardware-software co-design for hybrid GNN + language-model recommenders.

The package is split by concern (see docs/architecture.md): ``data`` reads RecBole atomic files
and builds splits and graphs, ``encoders`` wraps pretrained language models, ``models`` holds the
baselines, the float hybrid teacher and the quantized student, ``train`` the losses, metrics and
evaluation, ``compile`` the QONNX/FINN flow and ``runtime`` the numpy-only accelerator API.
"""

__version__ = "0.1.0"
