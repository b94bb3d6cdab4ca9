"""adcoffea.processing: the torch threads a configured run gives the processor's scoring."""

from __future__ import annotations

import pytest

from adcoffea.models.threads import available_cores
from adcoffea.processing import score_threads


def test_iterative_scores_on_every_core():
    assert score_threads("iterative", workers=8, scheduler=None) == available_cores()


@pytest.mark.parametrize("executor", ["futures", "dask"])
def test_local_workers_share_the_cores(executor):
    cores = available_cores()
    assert score_threads(executor, workers=cores, scheduler=None) == 1
    assert score_threads(executor, workers=4 * cores, scheduler=None) == 1  # at least one
    if cores >= 2:
        assert score_threads(executor, workers=1, scheduler=None) == cores


def test_remote_workers_keep_the_processors_setting():
    assert score_threads("dask", workers=2, scheduler="tcp://127.0.0.1:8786") is None


def test_run_configured_gives_the_processor_its_threads(monkeypatch):
    import adcoffea.execution
    from adcoffea.config import AnalysisConfig
    from adcoffea.processing import run_configured
    from adcoffea.processors import DijetProcessor

    seen = {}

    def fake_run(fileset, proc, **kwargs):
        seen["threads"], seen["executor"] = proc.score_threads, kwargs["executor"]

    monkeypatch.setattr(adcoffea.execution, "run_processor", fake_run)
    cfg = AnalysisConfig.model_validate({"name": "t", "datasets": {"fileset": "f.json"}})
    proc = DijetProcessor()
    run_configured(cfg, {}, proc, executor="iterative")
    assert seen == {"threads": available_cores(), "executor": "iterative"}
    assert proc.score_threads == 1  # the caller's processor is left as it was
