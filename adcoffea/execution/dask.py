"""dask-distributed: the client (a ``LocalCluster`` or an existing scheduler) and its quirks."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from adcoffea.errors import ConfigError
from adcoffea.execution.allocator import MMAP_MAX, MMAP_THRESHOLD, TRIM_THRESHOLD

log = logging.getLogger("adcoffea.execution")


@dataclass
class DaskSettings:
    """How to reach dask: an existing scheduler, or a ``LocalCluster`` of ``workers``."""

    scheduler: str | None = None
    workers: int = 2
    threads_per_worker: int = 1
    dashboard: bool = True
    _cluster: Any = field(default=None, repr=False)


#: glibc malloc's thresholds in the workers of a ``LocalCluster`` adcoffea starts, as in the
#: futures workers (:mod:`adcoffea.execution.allocator`). The dask nanny sets
#: ``MALLOC_TRIM_THRESHOLD_=65536``, which also switches off glibc's adaptive mmap
#: threshold: every large numpy/awkward temporary is mapped and page-faulted anew, and freed
#: heap memory is handed back at once (a worker's time per chunk doubled: system time 0.2 ->
#: 0.9 s per 100k events). The mmap threshold alone does not help while the trim threshold
#: is that low (24,000 page faults per 80 arrays of 8 MB against 54,000; with both, none;
#: an mmap threshold above glibc's 32 MiB maximum, as set here before, is ignored; arrays
#: above it, such as a constituent chunk's, need mapped chunks switched off). The workers of
#: a cluster adcoffea joins (``--scheduler``) are left as their owner set them.
WORKER_ENVIRON = {
    "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD),
    "MALLOC_MMAP_MAX_": str(MMAP_MAX),
    "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD),
}


def local_worker_config() -> dict[str, Any]:
    """dask config for the worker processes of a ``LocalCluster`` (see ``WORKER_ENVIRON``)."""
    import dask

    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    return {"distributed.nanny.pre-spawn-environ": {**env, **WORKER_ENVIRON}}


def dask_client(settings: DaskSettings):
    """A ``distributed.Client``: joins ``settings.scheduler`` or starts a ``LocalCluster``.

    Prints the dashboard address. The caller closes the client (and ``settings._cluster``).
    """
    import dask
    from distributed import Client, LocalCluster

    # dask's config logs at INFO and records propagate to the CLI's root handler whatever
    # the root level: follow the root level instead (``adcoffea -v`` shows them)
    dlog = logging.getLogger("distributed")
    dlog.setLevel(max(dlog.getEffectiveLevel(), logging.getLogger().getEffectiveLevel()))
    if settings.scheduler:
        try:
            client = Client(settings.scheduler, timeout="30s")
        except (OSError, TimeoutError) as err:
            raise ConfigError(
                f"--scheduler: cannot connect to dask scheduler {settings.scheduler}: {err}"
            ) from None
    else:
        with dask.config.set(local_worker_config()):
            cluster = LocalCluster(
                silence_logs=logging.WARNING,
                n_workers=settings.workers,
                threads_per_worker=settings.threads_per_worker,
                processes=True,
                dashboard_address=":0" if settings.dashboard else None,
            )
        settings._cluster = cluster
        client = Client(cluster)
        # A failed task is re-raised here with its traceback; the workers' own
        # "Compute Failed" log of it would only repeat it as a wall of text.
        client.run(_quiet_worker_logs)
    link = getattr(client, "dashboard_link", None)
    if link:
        log.info("dask dashboard: %s", link)
    return client


def _quiet_worker_logs() -> None:
    logging.getLogger("distributed.worker").setLevel(logging.CRITICAL)


@contextlib.contextmanager
def _no_dask_progress_tracebacks():
    """Stop coffea's dask progress bar from printing a rich traceback of a failed task.

    The error is raised to the caller anyway; in strict mode it is a user error whose
    one-line message is enough. Without that private hook (another coffea), nothing changes.
    """
    try:
        from coffea.processor._dask import RichProgressBar
    except ImportError:
        yield
        return
    original = getattr(RichProgressBar, "_draw_stop", None)
    if original is None:
        yield
        return

    def quiet(self, remaining, all, status, exception=None, **kwargs):
        return original(self, remaining, all, "finished" if status == "error" else status)

    RichProgressBar._draw_stop = quiet
    try:
        yield
    finally:
        RichProgressBar._draw_stop = original
