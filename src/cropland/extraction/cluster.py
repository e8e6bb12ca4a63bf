"""Where extraction jobs run: in this process, on a local Dask cluster, or on a scheduler.

The runner accepts any :class:`concurrent.futures.Executor`; this module makes the
``dask.distributed`` one (``Client.get_executor()``). Workers only read and write sample
files; results come back to this process, the only writer of the manifest, so the
manifest stays consistent with any number of workers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager

from cropland.errors import ConfigError

log = logging.getLogger(__name__)

#: Dask settings of local workers. Dask's default MALLOC_TRIM_THRESHOLD_ makes every large
#: temporary array a fresh mmap (the resampling ran 4x slower), and its sampling profiler
#: walks every read thread's stack each 10 ms.
WORKER_CONFIG = {
    "distributed.nanny.pre-spawn-environ": {
        "OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1},
    "distributed.worker.profile.enabled": False,
}


@contextmanager
def extraction_executor(scheduler: str | None = None, workers: int = 1) -> Iterator[Executor | None]:
    """An executor for extraction jobs, closed on exit.

    ``scheduler`` (``tcp://host:8786``) connects to a running Dask scheduler; otherwise
    ``workers > 1`` starts a local Dask cluster of single-threaded worker processes (a
    process pool when Dask is not installed), and ``workers <= 1`` yields ``None`` (jobs
    run in this process).
    """
    if scheduler is None and workers <= 1:
        yield None
        return
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        if scheduler is not None:
            raise ConfigError("--scheduler needs dask.distributed: pip install 'cropland[stac]'"
                              ) from None
        log.warning("dask.distributed is not installed (pip install 'cropland[stac]'): "
                    "extracting on a local process pool instead")
        yield None  # the runner makes a process pool of `workers`
        return
    if scheduler is not None:
        with Client(scheduler) as client:
            log.info("extracting on the Dask scheduler %s", scheduler)
            client.run(_warm_up)
            yield client.get_executor(pure=False)
        return
    import dask

    with dask.config.set(WORKER_CONFIG), LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
    ) as cluster, Client(cluster) as client:
        log.info("extracting on a local Dask cluster of %d workers", workers)
        client.run(_warm_up)
        yield client.get_executor(pure=False)  # every job runs, even a repeated one


def _warm_up() -> None:
    """Import the extraction code on a worker (fails early if a worker cannot)."""
    import cropland.extraction.runner
    import cropland.sources  # noqa: F401
