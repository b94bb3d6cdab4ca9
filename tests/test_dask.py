"""dask-distributed: same histograms as the iterative executor, models loaded once per
worker, and a worker killed mid-run loses no events.

One small ``LocalCluster`` (2 single-threaded worker processes) serves the module.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import types
from dataclasses import dataclass

import numpy as np
import pytest

from adcoffea.execution import run_processor
from adcoffea.processors import DijetProcessor

distributed = pytest.importorskip("distributed")

N_EVENTS = 2400
CHUNK = 300
RTOL = 1e-12  # float summation order only


def setup_module(module):
    # the test processors below live in this module; ship them by value to the workers
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def fileset(tmp_path_factory) -> dict:
    from adcoffea.synthetic import generate

    out = tmp_path_factory.mktemp("dask")
    gen = generate("qcd", n_events=N_EVENTS, seed=21, out_dir=out, n_files=2, name="qcd")
    return {"qcd": [str(f) for f in gen.files]}


@pytest.fixture(scope="module")
def client():
    """The LocalCluster ``--executor dask --workers 2`` starts."""
    from adcoffea.execution import DaskSettings, dask_client

    settings = DaskSettings(workers=2)
    with dask_client(settings) as c, settings._cluster:
        yield c


def test_local_workers_get_the_allocator_setting(client):
    from adcoffea.execution import WORKER_ENVIRON

    envs = client.run(lambda: {k: os.environ.get(k) for k in WORKER_ENVIRON})
    assert len(envs) == 2
    assert all(env == WORKER_ENVIRON for env in envs.values())
    # and glibc took them: freed chunk temporaries are reused, not faulted in again (dask's
    # own trim threshold gave ~50,000 faults for these 80 arrays of 8 MB)
    import cloudpickle
    import test_allocator

    cloudpickle.register_pickle_by_value(test_allocator)
    faults = client.run(test_allocator.freed_array_faults)
    assert all(n < 2000 for n in faults.values()), faults
    # arrays above glibc's largest mmap threshold (64 MB: a constituent chunk's) too
    faults = client.run(test_allocator.freed_array_faults, 8_000_000)
    assert all(n < 2000 for n in faults.values()), faults


@pytest.fixture(scope="module")
def reference(fileset):
    return run_processor(
        fileset, DijetProcessor(), executor="iterative", chunksize=CHUNK, status=False
    )


def assert_same_hists(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].axes == b[name].axes
        np.testing.assert_allclose(
            a[name].values(flow=True), b[name].values(flow=True), rtol=RTOL, atol=0
        )
        np.testing.assert_allclose(
            a[name].variances(flow=True), b[name].variances(flow=True), rtol=RTOL, atol=0
        )


def test_dask_equals_iterative(fileset, reference, client):
    res = run_processor(
        fileset, DijetProcessor(), executor="dask", client=client, chunksize=CHUNK, status=False
    )
    assert res.report.events_processed == res.report.events_total == N_EVENTS
    assert res.report.failures == ()
    assert res.output["cutflow"] == reference.output["cutflow"]
    assert_same_hists(res.output["hists"], reference.output["hists"])


def test_join_existing_scheduler(fileset, reference, client, caplog):
    """``--scheduler tcp://...``: joins the running cluster and leaves it running."""
    caplog.set_level(logging.INFO, logger="adcoffea")
    res = run_processor(
        fileset,
        DijetProcessor(),
        executor="dask",
        scheduler=client.scheduler.address,
        chunksize=CHUNK,
        status=False,
    )
    assert "dask dashboard: http://" in caplog.text
    assert res.report.events_processed == N_EVENTS
    assert_same_hists(res.output["hists"], reference.output["hists"])
    assert len(client.scheduler_info()["workers"]) == 2  # still up


@pytest.mark.slow
def test_own_local_cluster(fileset, reference, caplog):
    caplog.set_level(logging.INFO, logger="adcoffea")
    res = run_processor(
        {"qcd": fileset["qcd"][:1]},
        DijetProcessor(),
        executor="dask",
        workers=1,
        chunksize=CHUNK,
        status=False,
    )
    assert "dask dashboard: http://" in caplog.text
    assert res.report.events_processed == N_EVENTS // 2


def test_bad_chunk_on_dask(fileset, client, tmp_path):
    """Default: accounted as failed; strict: the named file, not a remote traceback."""
    import shutil

    from adcoffea.errors import InputFileError

    bad = tmp_path / "truncated.root"
    shutil.copy(fileset["qcd"][0], bad)
    with open(bad, "r+b") as f:
        f.truncate(30_000)
    fs = {"qcd": [fileset["qcd"][1], str(bad)]}
    kw = dict(executor="dask", client=client, chunksize=CHUNK, status=False)
    r = run_processor(fs, DijetProcessor(), **kw).report
    assert (r.events_total, r.events_processed, r.events_failed) == (
        N_EVENTS,
        N_EVENTS // 2,
        N_EVENTS // 2,
    )
    assert {f.path for f in r.failures} == {str(bad)}
    assert sorted((f.entry_start, f.entry_stop) for f in r.failures)[0] == (0, CHUNK)
    with pytest.raises(InputFileError) as info:
        run_processor(fs, DijetProcessor(), strict=True, retries=0, **kw)
    assert info.value.path == str(bad) and "OSError" in info.value.reason


# --------------------------------------------------------------------------------------
# models: loaded once per worker process, not once per task
# --------------------------------------------------------------------------------------
class _FakeModel:
    required_inputs = ()

    def score(self, inputs):
        return np.clip(inputs.high_level["mjj"] / 1e4, 0, 1)


def _install_fake_bundle_loader():
    """On a worker: make ``adcoffea.models.bundle.load_bundle`` a counting stand-in."""
    import adcoffea.processors.base as base

    mod = types.ModuleType("adcoffea.models.bundle")
    mod.loads = []

    def load_bundle(path):
        mod.loads.append(str(path))
        return _FakeModel()

    mod.load_bundle = load_bundle
    sys.modules["adcoffea.models.bundle"] = mod
    base._BUNDLES.clear()
    return os.getpid()


def _count_and_restore():
    import adcoffea.processors.base as base

    mod = sys.modules.pop("adcoffea.models.bundle", None)
    base._BUNDLES.clear()
    return len(getattr(mod, "loads", []))


def _with_bundle(path: str) -> DijetProcessor:
    """A processor scoring with the bundle at ``path`` (``bundles=`` or older ``bundle=``)."""
    from dataclasses import fields

    if "bundles" in {f.name for f in fields(DijetProcessor)}:
        return DijetProcessor(bundles=(("stand-in", path),))
    return DijetProcessor(bundle=path)


def test_model_bundle_loaded_once_per_worker(fileset, client, tmp_path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "metadata.json").write_text(json.dumps({"method": "stand-in"}))
    client.run(_install_fake_bundle_loader)
    _install_fake_bundle_loader()  # the main process checks the models before processing
    try:
        res = run_processor(
            fileset,
            _with_bundle(str(bundle)),
            executor="dask",
            client=client,
            chunksize=CHUNK,
            status=False,
        )
    finally:
        loads = client.run(_count_and_restore)
        assert _count_and_restore() == 1
    assert res.report.chunks_processed == N_EVENTS // CHUNK
    # every worker that ran a chunk loaded the bundle exactly once
    assert sum(loads.values()) >= 1
    assert set(loads.values()) <= {0, 1}
    assert res.output["hists"]["score"].values().sum() > 0


# --------------------------------------------------------------------------------------
# faults: a worker process dies mid-run
# --------------------------------------------------------------------------------------
@dataclass
class KillOnceDijet(DijetProcessor):
    """SIGKILLs its own worker process on the first chunk that sees no marker file."""

    marker: str = ""

    def process(self, events):
        if self.marker and events.metadata["entrystart"] > 0:
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
        return super().process(events)


def test_killed_worker_is_retried_and_loses_nothing(fileset, reference, client, tmp_path):
    marker = tmp_path / "killed"
    pids_before = set(client.run(os.getpid).values())
    res = run_processor(
        fileset,
        KillOnceDijet(marker=str(marker)),
        executor="dask",
        client=client,
        chunksize=CHUNK,
        status=False,
    )
    killed_pid = int(marker.read_text())
    assert killed_pid in pids_before  # a worker really died mid-run ...
    client.wait_for_workers(2, timeout=60)
    assert killed_pid not in set(client.run(os.getpid).values())  # ... and was replaced
    r = res.report
    assert (r.events_total, r.events_processed, r.events_failed) == (N_EVENTS, N_EVENTS, 0)
    assert r.failures == ()
    assert res.output["cutflow"] == reference.output["cutflow"]
    assert_same_hists(res.output["hists"], reference.output["hists"])


def test_file_vanishing_after_preflight_on_dask(fileset, reference, client, tmp_path, monkeypatch):
    """A file that passes the pre-flight and is then deleted: failed chunks, not a crash."""
    import shutil

    import adcoffea.execution.preflight as pf

    gone = tmp_path / "vanishing.root"
    shutil.copy(fileset["qcd"][0], gone)
    real = pf.check_fileset

    def check_then_delete(*args, **kwargs):
        out = real(*args, **kwargs)
        gone.unlink()
        return out

    monkeypatch.setattr(pf, "check_fileset", check_then_delete)
    res = run_processor(
        {"qcd": [*fileset["qcd"], str(gone)]},
        DijetProcessor(),
        executor="dask",
        client=client,
        chunksize=CHUNK,
        status=False,
    )
    r = res.report
    half = N_EVENTS // 2
    assert (r.events_total, r.events_processed, r.events_failed) == (
        N_EVENTS + half,
        N_EVENTS,
        half,
    )
    assert {f.path for f in r.failures} == {str(gone)}
    assert len(r.failures) == half // CHUNK
    assert all("FileNotFoundError" in f.reason for f in r.failures)
    assert res.output["cutflow"] == reference.output["cutflow"]
    assert_same_hists(res.output["hists"], reference.output["hists"])
