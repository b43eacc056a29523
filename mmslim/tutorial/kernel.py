"""A kernel manager for headless runs that re-polls for a reply one poll may have missed.

nbclient waits for a cell's ``execute_reply`` with one long poll of the kernel's shell socket
(as long as the cell timeout). Now and then that poll is not woken although the reply has
arrived, typically after a cell that displays ipywidgets (jupyter/nbclient#312): the kernel sits
idle and the run waits for the whole timeout. Here it happened several times at the mask explorer
of notebook 08 (kernel idle, client waiting); whether the slices below cure every case is not
proven: the hang is intermittent, and runs without them also passed at times.

:class:`PollingKernelManager` gives nbclient a kernel client whose shell channel polls in
slices of at most one second until the same deadline, so a reply that was missed by one poll
is read by the next. Nothing else changes. :func:`mmslim.notebooks.run_notebooks` passes it to
papermill as ``kernel_manager_class``.
"""

from __future__ import annotations

import time
from queue import Empty

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from traitlets import DottedObjectName, Type

SLICE_S = 1.0  # longest single poll of the shell socket


class PollingChannel(AsyncZMQSocketChannel):
    """An async shell channel whose ``get_msg(timeout)`` polls in slices of ``SLICE_S``."""

    async def get_msg(self, timeout: float | None = None) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = SLICE_S if deadline is None else deadline - time.monotonic()
            try:
                return await super().get_msg(timeout=max(0.0, min(SLICE_S, left)))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise


class PollingKernelClient(AsyncKernelClient):
    shell_channel_class = Type(PollingChannel)


class PollingKernelManager(AsyncKernelManager):
    client_class = DottedObjectName("mmslim.kernel_client.PollingKernelClient")
    client_factory = Type(PollingKernelClient, klass=AsyncKernelClient)


__all__ = ["PollingChannel", "PollingKernelClient", "PollingKernelManager"]
