"""Compile the quantized student into a FINN dataflow design and a bundle.

- :mod:`~fpgarec.compile.export`: student -> QONNX (fusion folded into one table)
- :mod:`~fpgarec.compile.config`: :class:`BuildConfig`, the one build configuration
- :mod:`~fpgarec.compile.boards`: board files of ``hw/boards``
- :mod:`~fpgarec.compile.steps`: the ``step_*(model, cfg) -> model`` functions of the flow
- :mod:`~fpgarec.compile.finn_builder`: FINN's ``DataflowBuildConfig`` for a :class:`BuildConfig`
- :mod:`~fpgarec.compile.fit`: the fit check of FINN's estimates against the board
- :mod:`~fpgarec.compile.folding`: resource- and latency-aware PE/SIMD choice
- :mod:`~fpgarec.compile.checks`: every step checked against the previous one
- :mod:`~fpgarec.compile.flow`: :func:`~fpgarec.compile.flow.build` (``fpgarec build``)
- :mod:`~fpgarec.compile.bundle`, :mod:`~fpgarec.compile.report`: the bundle and its report
- :mod:`~fpgarec.compile.verify`: emulation vs FINN execution vs Brevitas on many queries

Importing this package is cheap; torch, brevitas, qonnx and finn are imported where used.
"""
