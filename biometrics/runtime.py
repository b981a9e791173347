"""onnxruntime sessions for the face models: CPU provider, thread counts sized for small servers."""

from __future__ import annotations

import os
from pathlib import Path

import onnxruntime as ort

from biometrics.errors import ModelError

__all__ = ["create_session", "default_threads"]


def default_threads() -> int:
    """Intra-op threads for one session: every core this process may use, at least one."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def create_session(path: Path, *, threads: int | None = None) -> ort.InferenceSession:
    """An inference session on the CPU for the ONNX file at `path`.

    One intra-op pool of `threads` (default: the usable cores) and no inter-op parallelism: the
    face models are chains of convolutions, and a second pool only oversubscribes the cores.

    Raises ModelError when onnxruntime cannot load the file.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Every session has its own pool, and a pool's workers spin between runs by default: with
    # the pipeline's four sessions on two cores, the idle pools' spinning workers took the
    # cores from the running one (detection + embedding ran 2x slower; bench/faces.py).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # warnings about unused initializers are noise here
    try:
        return ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime's exceptions share no public base class
        raise ModelError(f"{path.name}: onnxruntime cannot load it: {exc}") from exc
