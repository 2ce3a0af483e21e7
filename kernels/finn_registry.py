"""The kernel table's FINN side: registration of every kernel's ops with FINN and the ``_rtl``
preference for FINN's ``SpecializeLayers``. Imports finn and qonnx (the compile flow and the
tests use it); :mod:`kernels.registry` itself is the plain table, which the numpy-only runtime
reads.
"""

from __future__ import annotations

from kernels.registry import FINN_DOMAIN, FINN_RTL_DOMAIN, KERNELS, by_op, load

_REGISTERED = False


def register_finn() -> None:
    """Make FINN know every kernel (idempotent; imports finn and qonnx): the abstract HW ops
    into FINN's domain (replacing FINN's op of the same name), the ``_rtl`` backends into
    FINN's RTL domain and into FINN's table of RTL variants, which ``SpecializeLayers``
    consults (an op with an ``_rtl`` variant there is specialised to it by default)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from finn.custom_op.fpgadataflow.rtl import custom_op as rtl_variants
    from qonnx.custom_op.registry import add_op_to_domain

    for k in KERNELS:
        if k.finn_op:
            add_op_to_domain(FINN_DOMAIN, load(k.finn_op))
        rtl = load(k.rtl_op)
        add_op_to_domain(FINN_RTL_DOMAIN, rtl)
        rtl_variants[rtl.__name__] = rtl
    _REGISTERED = True


def prefer_rtl(model):
    """Set ``preferred_impl_style`` of the HW nodes of ``model`` that a kernel implements, before
    FINN's ``SpecializeLayers``: "rtl" where the kernel's ``_rtl`` class accepts the node
    (its ``rtl_unsupported(op)``, when it has one, returns "" or the reason it cannot build
    the node), else "hls" (FINN's HLS variant, with a warning naming the reason). A style already set (by a specialize-layers file) is kept. In place;
    returns the model."""
    import logging

    from qonnx.custom_op.registry import getCustomOp

    register_finn()
    log = logging.getLogger(__name__)
    for node in model.graph.node:
        k = by_op(node.op_type)
        if node.domain != FINN_DOMAIN or k is None or node.op_type != k.op_type:
            continue
        inst = getCustomOp(node)
        if inst.get_nodeattr("preferred_impl_style"):
            continue
        check = getattr(load(k.rtl_op), "rtl_unsupported", None)
        why = check(inst) if check is not None else ""
        if why:
            log.warning("%s: the %s RTL (kernels/%s) cannot build it (%s); FINN's HLS variant is used",
                        node.name, k.op_type, k.name, why)
        inst.set_nodeattr("preferred_impl_style", "hls" if why else "rtl")
    return model
