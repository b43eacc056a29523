"""The kernel manager of headless runs: local sockets, a quiet shutdown, and a re-polling client.

Three changes to jupyter_client's ``AsyncKernelManager``, nothing else:

* **IPC transport** where the platform has Unix sockets. Over TCP, ipykernel (7.x) logs
  "Kernel is running over TCP without encryption" at every start, rightly: anyone on the machine
  can connect to a TCP port. IPC sockets are files in the user's Jupyter runtime folder, so the
  kernel is reachable by this user only, and the warning has nothing to warn about. Windows keeps
  TCP (no ``ipc://`` there). The socket files are named after a fresh id in that folder and
  removed when the kernel shuts down.
* **No interrupt at shutdown.** ``shutdown_kernel`` sends SIGINT before its shutdown request; a
  kernel that finished its cells has nothing to interrupt, and when the signal lands while it
  handles a message (a widget comm, a status request) it logs
  ``ERROR | KeyboardInterrupt caught in kernel`` after a notebook that succeeded. A cell that
  runs too long is still interrupted: nbclient does that itself on a timeout, and a kernel that
  ignores the shutdown request is killed after ``shutdown_wait_time``.
* **A shell channel that polls in slices.** nbclient waits for a cell's ``execute_reply`` with
  one long poll of the shell socket (as long as the cell timeout). Now and then that poll is not
  woken although the reply has arrived, typically after a cell that displays ipywidgets
  (jupyter/nbclient#312): the kernel sits idle and the run waits for the whole timeout. Here it
  happened several times at the mask explorer of notebook 08. :class:`PollingChannel` polls in
  slices of at most one second until the same deadline, so a reply missed by one poll is read
  by the next. Whether that cures every case is not proven: the hang is intermittent.

:func:`mmslim.tutorial.runner.run_notebooks` passes :class:`PollingKernelManager` to papermill as
``kernel_manager_class``.
"""

from __future__ import annotations

import os
import time
import uuid
from queue import Empty

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir
from traitlets import CaselessStrEnum, DottedObjectName, Type, default

SLICE_S = 1.0  # longest single poll of the shell socket
TRANSPORT = "tcp" if os.name == "nt" else "ipc"  # Unix sockets wherever they exist


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
    """``AsyncKernelManager`` on IPC sockets, without the interrupt before shutdown, handing out
    :class:`PollingKernelClient` (see the module doc)."""

    transport = CaselessStrEnum(["tcp", "ipc"], default_value=TRANSPORT, config=True)
    client_class = DottedObjectName("mmslim.tutorial.kernel.PollingKernelClient")
    client_factory = Type(PollingKernelClient, klass=AsyncKernelClient)

    @default("ip")
    def _ip_default(self) -> str:
        if self.transport != "ipc":
            return super()._ip_default()
        # jupyter_client's default, "kernel-ipc" in the working directory, would leave sockets
        # in the run folder and let two runs in one folder collide: one unique prefix per
        # kernel in the runtime folder instead (sockets are removed at shutdown).
        folder = jupyter_runtime_dir()
        os.makedirs(folder, exist_ok=True)
        return os.path.join(folder, f"mmslim-{uuid.uuid4().hex[:12]}-ipc")

    async def _async_interrupt_kernel(self) -> None:
        if self.shutting_down:  # set by shutdown_kernel just before it would interrupt
            return
        await super()._async_interrupt_kernel()

    interrupt_kernel = _async_interrupt_kernel


__all__ = ["PollingChannel", "PollingKernelClient", "PollingKernelManager", "TRANSPORT"]
