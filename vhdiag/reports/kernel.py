"""One Jupyter kernel for several reports of one run (``vhdiag report weekly``).

papermill starts a kernel per notebook, and starting one (a Python process importing IPython,
then vhdiag, pandas and matplotlib in its first cell) is a good share of a short report's wall
time. The weekly run executes its reports one after the other for the same target, with the same
environment (the ``env:`` references of ``refs``), so they can share one kernel: each notebook's
parameters cell and ``build()`` set everything it uses, and nothing a report computes is kept in
files by the kernel. A kernel that died (a report that crashed it) is replaced before the next one.

``SharedKernel.start_s`` is the time spent starting kernels, which ``-v`` prints as a share of the
run's wall time.
"""
from __future__ import annotations

import time
from pathlib import Path


class SharedKernel:
    """A kernel manager started on first use, in ``cwd``, with the environment of that moment."""

    def __init__(self, cwd: Path, kernel_name: str = "python3"):
        self.cwd, self.kernel_name = Path(cwd), kernel_name
        self.km = None
        self.starts = 0
        self.start_s = 0.0

    def manager(self):
        """The running kernel's manager (started, or restarted when it died)."""
        if self.km is not None and self.km.is_alive():
            return self.km
        self.close()
        from jupyter_client import KernelManager
        began = time.perf_counter()
        km = KernelManager(kernel_name=self.kernel_name)
        km.start_kernel(cwd=str(self.cwd), extra_arguments=["--IPKernelApp.log_level=ERROR"])
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
        finally:
            kc.stop_channels()
        self.km = km
        self.starts += 1
        self.start_s += time.perf_counter() - began
        return km

    def close(self) -> None:
        if self.km is not None:
            try:
                self.km.shutdown_kernel(now=True)
            except Exception:  # noqa: BLE001 - a kernel already gone
                pass
            self.km = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
