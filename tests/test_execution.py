"""Executors agree, interrupted runs resume from per-chunk checkpoints, writes are atomic."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from adcoffea.errors import ConfigError
from adcoffea.execution import (
    EXIT_INPUT_FAILURES,
    AccountingProcessor,
    atomic_write_bytes,
    normalise_fileset,
    processor_fingerprint,
    run_processor,
)
from adcoffea.processors import DijetProcessor

N_EVENTS = 3000
CHUNK = 400
#: Histograms from different executors differ only by float summation order.
RTOL = 1e-12


@pytest.fixture(scope="module")
def fileset(tmp_path_factory) -> dict:
    from adcoffea.synthetic import generate

    out = tmp_path_factory.mktemp("execution")
    qcd = generate("qcd", n_events=N_EVENTS, seed=5, out_dir=out, n_files=2, name="qcd")
    sig = generate("wprime", n_events=500, seed=6, out_dir=out, name="wprime")
    return {"qcd": [str(f) for f in qcd.files], "wprime": [str(f) for f in sig.files]}


def assert_same_hists(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        ha, hb = a[name], b[name]
        assert ha.axes == hb.axes, name
        np.testing.assert_allclose(ha.values(flow=True), hb.values(flow=True), rtol=RTOL, atol=0)
        np.testing.assert_allclose(
            ha.variances(flow=True), hb.variances(flow=True), rtol=RTOL, atol=0
        )


@pytest.fixture(scope="module")
def iterative_run(fileset):
    return run_processor(
        fileset, DijetProcessor(), executor="iterative", chunksize=CHUNK, status=False
    )


def test_iterative_accounts_every_event(iterative_run):
    r = iterative_run.report
    assert r.datasets["qcd"]["events_total"] == N_EVENTS
    assert r.datasets["wprime"]["events_total"] == 500
    assert r.events_processed == r.events_total == N_EVENTS + 500
    assert iterative_run.output["cutflow"]["qcd"]["all"] == N_EVENTS
    # the selection keeps some but not all events
    h = iterative_run.output["hists"]["mjj"]
    assert 0 < h[{"dataset": "qcd", "region": "inclusive"}].values().sum() < N_EVENTS


def test_a_quiet_iterative_run_prints_nothing_and_equals_one_with_status(
    fileset, iterative_run, capfd
):
    capfd.readouterr()
    quiet = run_processor(
        fileset, DijetProcessor(), executor="iterative", chunksize=CHUNK, status=False
    )
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # coffea's own executor printed the finished bar
    shown = run_processor(
        fileset, DijetProcessor(), executor="iterative", chunksize=CHUNK, status=True
    )
    assert quiet.report.events_processed == shown.report.events_processed
    assert quiet.report.chunks_processed == shown.report.chunks_processed > 1
    assert_same_hists(quiet.output["hists"], shown.output["hists"])
    assert_same_hists(quiet.output["hists"], iterative_run.output["hists"])


def test_futures_equals_iterative(fileset, iterative_run):
    fut = run_processor(
        fileset, DijetProcessor(), executor="futures", workers=2, chunksize=CHUNK, status=False
    )
    assert fut.report.to_dict()["datasets"] == iterative_run.report.to_dict()["datasets"]
    assert fut.output["cutflow"] == iterative_run.output["cutflow"]
    assert_same_hists(fut.output["hists"], iterative_run.output["hists"])


@dataclass
class _Pids(DijetProcessor):
    """The dijet processor, also recording which worker process ran each chunk."""

    def process(self, events):
        out = super().process(events)
        out["pids"] = {os.getpid()}
        return out


def test_a_shared_futures_pool_serves_several_runs(fileset, iterative_run):
    import sys

    import cloudpickle

    from adcoffea.execution import futures_pool

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with futures_pool(2) as pool:
        runs = [
            run_processor(
                fileset, _Pids(), executor="futures", chunksize=CHUNK, status=False, pool=pool
            )
            for _ in range(2)
        ]
        assert pool.submit(sum, [1, 2]).result() == 3  # not shut down by the runs
    # the same worker processes ran both (started once), and the results are the same
    assert runs[0].output["pids"] == runs[1].output["pids"]
    assert os.getpid() not in runs[0].output["pids"]
    for r in runs:
        assert r.output["cutflow"] == iterative_run.output["cutflow"]
        assert_same_hists(r.output["hists"], iterative_run.output["hists"])
    with pytest.raises(RuntimeError):
        pool.submit(sum, [1])


def test_collected_columns_come_in_the_same_order_on_every_executor(fileset):
    """Chunks finish in any order on the futures executor; the columns (the training and
    hunt inputs, whose row order seeded splits depend on) come back in the iterative order,
    without the ordering column."""
    from adcoffea.execution.accounting import ORDER_COLUMN

    proc = DijetProcessor(collect_columns=True)
    ref = run_processor(fileset, proc, executor="iterative", chunksize=CHUNK, status=False)
    fut = run_processor(fileset, proc, executor="futures", workers=2, chunksize=CHUNK, status=False)
    for ds, cols in ref.output["columns"].items():
        assert ORDER_COLUMN not in fut.output["columns"][ds]
        assert cols.keys() == fut.output["columns"][ds].keys()
        for name, acc in cols.items():
            np.testing.assert_array_equal(fut.output["columns"][ds][name].value, acc.value)


def test_canonical_column_order_sorts_chunks_and_keeps_rows_within_a_chunk():
    from coffea.processor import column_accumulator

    from adcoffea.execution.accounting import ORDER_COLUMN, canonical_column_order

    # three chunks merged in the order (file 1, start 0), (file 0, start 50), (file 0, 0)
    keys = [(1 << 40) | 0] * 2 + [50] * 3 + [0] * 2
    rows = np.array([10, 11, 5, 6, 7, 0, 1])
    out = {"columns": {"qcd": {"x": column_accumulator(rows)}}}
    out["columns"]["qcd"][ORDER_COLUMN] = column_accumulator(np.array(keys, dtype=np.int64))
    canonical_column_order(out)
    assert out["columns"]["qcd"].keys() == {"x"}
    np.testing.assert_array_equal(out["columns"]["qcd"]["x"].value, [0, 1, 5, 6, 7, 10, 11])


def test_chunksize_does_not_change_results(fileset, iterative_run):
    other = run_processor(
        fileset, DijetProcessor(), executor="iterative", chunksize=1100, status=False
    )
    assert other.output["cutflow"] == iterative_run.output["cutflow"]
    assert_same_hists(other.output["hists"], iterative_run.output["hists"])


# --------------------------------------------------------------------------------------
# resumability
# --------------------------------------------------------------------------------------
@dataclass
class CrashingDijet(DijetProcessor):
    """Dies (like an interrupted job) on the chunk starting at $ADC_TEST_CRASH_AT."""

    def process(self, events):
        if str(events.metadata["entrystart"]) == os.environ.get("ADC_TEST_CRASH_AT"):
            raise KeyboardInterrupt("simulated interruption")
        return super().process(events)


def _n_chunks(run) -> int:
    return len(run.output.get("_chunks", {})) or run.report.resumed_chunks


def test_resume_skips_completed_chunks(fileset, iterative_run, tmp_path, monkeypatch):
    ckpt = tmp_path / "ckpt"
    qcd_only = {"qcd": fileset["qcd"]}

    def crashing_run(**kw):
        """The checkpointed run of every step below (a fresh processor each time)."""
        return run_processor(
            qcd_only,
            CrashingDijet(),
            executor="iterative",
            chunksize=CHUNK,
            status=False,
            checkpoint_dir=ckpt,
            **kw,
        )

    clean = run_processor(
        qcd_only, DijetProcessor(), executor="iterative", chunksize=CHUNK, status=False
    )
    # interrupted on the 3rd chunk of the first file: 2 chunks checkpointed
    monkeypatch.setenv("ADC_TEST_CRASH_AT", str(2 * 375))
    with pytest.raises(KeyboardInterrupt):
        crashing_run()
    saved = sorted(p.name for p in ckpt.rglob("*.npz"))
    assert saved == ["0-375.npz", "375-750.npz"]
    assert not list(ckpt.rglob("*.tmp"))

    monkeypatch.delenv("ADC_TEST_CRASH_AT")
    resumed = crashing_run(keep_checkpoints=True)
    assert resumed.report.resumed_chunks == 2
    assert resumed.report.events_processed == resumed.report.events_total == N_EVENTS
    assert resumed.output["cutflow"] == clean.output["cutflow"]
    assert_same_hists(resumed.output["hists"], clean.output["hists"])

    # a third run is served entirely from checkpoints, even if processing would crash
    monkeypatch.setenv("ADC_TEST_CRASH_AT", "0")
    again = crashing_run()
    assert again.report.resumed_chunks == again.report.chunks_processed == 8
    assert_same_hists(again.output["hists"], clean.output["hists"])
    # a complete run without failures cleans up after itself ...
    assert not list(ckpt.rglob("*.npz"))
    # ... and resume=False never reads old checkpoints
    monkeypatch.setenv("ADC_TEST_CRASH_AT", "375")
    with pytest.raises(KeyboardInterrupt):
        crashing_run()
    monkeypatch.setenv("ADC_TEST_CRASH_AT", "0")
    with pytest.raises(KeyboardInterrupt):
        crashing_run(resume=False)
    assert not list(ckpt.rglob("*.npz"))


def test_resume_redoes_only_failed_chunks(fileset, tmp_path):
    """A file that failed to read is repaired; the rerun processes only its chunks."""
    import shutil

    good = fileset["qcd"][0]
    path = tmp_path / "flaky.root"
    shutil.copy(good, path)
    with open(path, "r+b") as f:  # truncate: the tree opens, its baskets do not
        f.truncate(30_000)
    ckpt = tmp_path / "ckpt"
    fs = {"qcd": [str(path), fileset["qcd"][1]]}
    kw = dict(executor="iterative", chunksize=CHUNK, status=False, checkpoint_dir=ckpt)
    first = run_processor(fs, DijetProcessor(), **kw)
    n_bad = first.report.events_failed
    assert n_bad == N_EVENTS // 2 and first.report.events_processed == N_EVENTS // 2
    assert len(list(ckpt.rglob("*.npz"))) == first.report.chunks_processed  # kept
    shutil.copy(good, path)  # same file (same UUID), now complete
    second = run_processor(fs, DijetProcessor(), **kw)
    assert second.report.failures == ()
    assert second.report.resumed_chunks == first.report.chunks_processed
    assert second.report.events_processed == second.report.events_total == N_EVENTS
    clean = run_processor(
        {"qcd": fileset["qcd"]}, DijetProcessor(), **{**kw, "checkpoint_dir": None}
    )
    assert second.output["cutflow"] == clean.output["cutflow"]
    assert_same_hists(second.output["hists"], clean.output["hists"])


def test_checkpoints_are_keyed_by_processor_config(tmp_path):
    from adcoffea.config import SelectionConfig

    a = processor_fingerprint(AccountingProcessor(DijetProcessor()))
    assert a == processor_fingerprint(DijetProcessor())
    b = processor_fingerprint(DijetProcessor(selection=SelectionConfig(jet_pt_min=500.0)))
    assert a != b


# --------------------------------------------------------------------------------------
# atomic outputs
# --------------------------------------------------------------------------------------
def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    atomic_write_bytes(path, b'{"complete": true}')

    def boom(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(path, b'{"trunc')
    assert path.read_bytes() == b'{"complete": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_fileset_forms_and_errors(tmp_path):
    fs = normalise_fileset({"a": ["x.root"], "b": {"files": {"y.root": "T"}, "treename": "E"}})
    assert fs["a"]["files"] == {"x.root": "Events"}
    assert fs["b"]["files"] == {"y.root": "T"}
    with pytest.raises(ConfigError, match="cannot read fileset"):
        normalise_fileset(tmp_path / "nope.json")
    with pytest.raises(ConfigError, match="has no files"):
        normalise_fileset({"a": []})
    with pytest.raises(ConfigError, match="unknown executor"):
        run_processor({"a": ["x.root"]}, DijetProcessor(), executor="spark")


def test_cli_flags_reach_the_executor(fileset, tmp_path, capsys):
    """``adcoffea run --executor iterative --chunksize --strict`` on a fileset config."""
    import json

    from adcoffea.cli import main

    fs_path = tmp_path / "fileset.json"
    fs_path.write_text(json.dumps({"qcd": fileset["qcd"] + [str(tmp_path / "gone.root")]}))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f"name: t\nanalysis: dijet\noutput: {tmp_path / 'out'}\n"
        f"datasets: {{fileset: {fs_path}}}\nexecutor: {{name: futures, chunksize: 5000}}\n"
    )
    rc = main(["run", str(cfg), "--executor", "iterative", "--chunksize", "700", "--no-statistics"])
    # an input failed: the run completes and writes its outputs, but does not pass as a
    # success; it names what was lost (before: exit 0, the loss only in cutflow.json)
    assert rc == EXIT_INPUT_FAILURES == 3
    err = capsys.readouterr().err
    assert "0 of 3000 events (0.0 %) lost in 1 failed file(s)" in err
    assert "1 of them unreadable" in err and "--allow-failures" in err
    report = json.loads(Path(tmp_path / "out" / "cutflow.json").read_text())["report"]
    assert report["executor"] == "iterative" and report["chunksize"] == 700
    assert report["events_processed"] == report["events_total"] == N_EVENTS
    assert report["failures"][0]["path"].endswith("gone.root")
    argv = ["run", str(cfg), "--executor", "iterative", "--no-statistics", "--allow-failures"]
    assert main(argv) == 0
    assert "warning: 0 of 3000 events" in capsys.readouterr().err
    cfg.write_text(
        cfg.read_text().replace("chunksize: 5000", "chunksize: 5000, allow_failures: true")
    )
    assert main(["run", str(cfg), "--executor", "iterative", "--no-statistics"]) == 0
    capsys.readouterr()
    rc = main(["run", str(cfg), "--executor", "iterative", "--strict", "--no-statistics"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "gone.root: file does not exist" in err and "Traceback" not in err


def test_copy_of_a_file_does_not_reuse_its_checkpoints(fileset, tmp_path):
    """Copies share the ROOT file UUID; their chunks must still be processed separately."""
    import shutil

    copy = tmp_path / "copy.root"
    shutil.copy(fileset["qcd"][0], copy)
    fs = {"qcd": [fileset["qcd"][0], str(copy)]}
    kw = dict(executor="iterative", chunksize=CHUNK, status=False, checkpoint_dir=tmp_path / "c")
    first = run_processor(fs, DijetProcessor(), keep_checkpoints=True, **kw)
    assert first.report.events_processed == N_EVENTS
    assert first.output["cutflow"]["qcd"]["all"] == N_EVENTS
    again = run_processor(fs, DijetProcessor(), **kw)
    assert again.report.resumed_chunks == again.report.chunks_processed == 8
    assert again.output["cutflow"] == first.output["cutflow"]


def test_process_cli_with_a_bundle_fills_score_regions(fileset, tmp_path, capsys):
    """``adcoffea process FILESET --bundle LABEL=DIR --score-cut X`` and its accounting."""
    import json
    import pickle

    from adcoffea.cli import main
    from adcoffea.models.bundle import save_bundle
    from adcoffea.models.train import train_model
    from adcoffea.processing import columns_to_inputs
    from adcoffea.processors import DijetProcessor

    # train on the features of the same QCD sample, as computed by the processor
    cols = run_processor(
        {"qcd": fileset["qcd"]},
        DijetProcessor(collect_columns=True),
        executor="iterative",
        status=False,
    ).output["columns"]
    inputs, *_ = columns_to_inputs(cols)
    names = ["mj_min", "mj_max", "tau21_min", "tau21_max"]
    result = train_model(
        "autoencoder", inputs, config=_fast_train_config(), features=names, progress=False
    )
    save_bundle(result.bundle, tmp_path / "ae")
    fs_path = tmp_path / "fileset.json"
    fs_path.write_text(json.dumps({"qcd": fileset["qcd"]}))
    out = tmp_path / "out"
    argv = ["process", str(fs_path), "--executor", "iterative", "--output", str(out)]
    rc = main([*argv, "--bundle", f"ae={tmp_path / 'ae'}", "--score-cut", "0.5"])
    assert rc == 0
    hists = pickle.loads((out / "hists.pkl").read_bytes())
    h = hists["mjj"]
    incl = h[{"dataset": "qcd", "region": "inclusive"}].sum(flow=True).value
    cut = h[{"dataset": "qcd", "region": "as_gt_0.5"}].sum(flow=True).value
    # AS > 0.5 is the 90 % background quantile of the training sample (the same events)
    assert cut / incl == pytest.approx(0.1, abs=0.03)
    scores = hists["score"][{"dataset": "qcd", "model": "ae"}]
    assert scores.sum(flow=True).value == incl
    report = json.loads((out / "cutflow.json").read_text())["report"]
    assert report["events_processed"] == report["events_total"] == N_EVENTS
    assert "3000 of 3000 events processed" in capsys.readouterr().out
    # a score cut without a model is a user error, reported without a traceback
    assert main([*argv, "--score-cut", "0.5"]) == 2
    assert "--score-cut needs --bundle" in capsys.readouterr().err


def _fast_train_config():
    from adcoffea.config import TrainConfig

    return TrainConfig(epochs=2, batch_size=128, patience=1)


# --------------------------------------------------------------------------------------
# checkpoints cannot run code (issue 12, item 13)
# --------------------------------------------------------------------------------------
class _Planted:
    """Unpickling this creates the file ``marker`` (a stand-in for any command)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_planted_checkpoint_never_runs_on_resume(fileset, tmp_path):
    """Before: a pickle planted in the checkpoint directory executed on --resume."""
    import pickle

    ckpt = tmp_path / "ckpt"
    qcd = {"qcd": fileset["qcd"][:1]}
    kw = dict(executor="iterative", chunksize=CHUNK, status=False, checkpoint_dir=ckpt)
    clean = run_processor(qcd, DijetProcessor(), keep_checkpoints=True, **kw)
    files = sorted(ckpt.rglob("*.npz"))
    assert len(files) == clean.report.chunks_processed == 4
    marker = tmp_path / "executed"
    # 1. a pickle under the old name, 2. a pickle under the new name, 3. an npz whose
    # array is a pickled object
    for f in files[:1]:
        f.with_suffix(".pkl").write_bytes(pickle.dumps({"out": _Planted(str(marker))}))
    files[1].write_bytes(pickle.dumps({"out": _Planted(str(marker))}))
    with open(files[2], "wb") as f:
        np.savez(f, __tree__=np.array([_Planted(str(marker))], dtype=object))
    again = run_processor(qcd, DijetProcessor(), keep_checkpoints=True, **kw)
    assert not marker.exists()
    # the two tampered chunks are processed again, the intact ones reused
    assert again.report.resumed_chunks == 2
    assert again.output["cutflow"] == clean.output["cutflow"]
    assert_same_hists(again.output["hists"], clean.output["hists"])


def test_safe_format_round_trips_a_chunk_output(fileset):
    from coffea.processor import column_accumulator

    from adcoffea.execution import safeio

    out = run_processor(
        {"qcd": fileset["qcd"][:1]}, DijetProcessor(), executor="iterative", status=False
    ).output
    out["columns"] = {"qcd": {"mjj": column_accumulator(np.linspace(0, 1, 5))}}
    back = safeio.loads(safeio.dumps(out))
    assert back["cutflow"] == out["cutflow"]
    assert_same_hists(back["hists"], out["hists"])
    np.testing.assert_array_equal(back["columns"]["qcd"]["mjj"].value, np.linspace(0, 1, 5))
    with pytest.raises(safeio.NotSerialisable):
        safeio.dumps({"f": lambda: 0})


# --------------------------------------------------------------------------------------
# a killed run: workers stop with it, its outputs never look current (issue 12, item 12)
# --------------------------------------------------------------------------------------
_KILL_SCRIPT = """
import os, sys, time, cloudpickle
from dataclasses import dataclass
from adcoffea.execution import run_processor
from adcoffea.processors import DijetProcessor

@dataclass
class Slow(DijetProcessor):
    pid_dir: str = ""
    def process(self, events):
        open(os.path.join(self.pid_dir, str(os.getpid())), "w").close()
        time.sleep(1.0)
        return super().process(events)

cloudpickle.register_pickle_by_value(sys.modules[__name__])
run_processor({"qcd": [sys.argv[1]]}, Slow(pid_dir=sys.argv[2]), executor="futures",
              workers=2, chunksize=100, status=False)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie (dead, not yet reaped) is not alive
        return f.read().split(")")[-1].split()[0] != "Z"


def test_futures_workers_stop_when_the_main_process_is_killed(fileset, tmp_path):
    """Before: loky workers went on processing chunks for more than 90 s."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "run.py"
    script.write_text(_KILL_SCRIPT)
    pids = tmp_path / "pids"
    pids.mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, str(script), fileset["qcd"][0], str(pids)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(pids.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = {int(p.name) for p in pids.iterdir()}
        assert workers and proc.poll() is None, "the workers never started"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in workers)


def test_run_outputs_are_one_unit(fileset, tmp_path, monkeypatch, capsys):
    """A run killed while processing, or while writing, never leaves outputs that look
    current: readers refuse them until a run completes (before: read as if current)."""
    import json

    import adcoffea.processing as processing
    from adcoffea.cli import main
    from adcoffea.errors import InputFileError
    from adcoffea.execution.manifest import check_output
    from adcoffea.fits.background import load_histogram
    from adcoffea.outputs import load_hists

    fs_path = tmp_path / "fileset.json"
    fs_path.write_text(json.dumps({"qcd": fileset["qcd"][:1]}))
    out = tmp_path / "out"
    argv = ["process", str(fs_path), "--executor", "iterative", "--output", str(out)]
    assert main(argv) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert {"hists.pkl", "hists.root", "cutflow.json"} <= set(manifest["files"])
    assert load_hists(out / "hists.pkl")["mjj"].sum().value > 0
    first_id = manifest["run_id"]

    # 1. killed during processing
    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("adcoffea.execution.run_processor", killed)
    assert main(argv) == 130
    for name in ("hists.pkl", "hists.root", "cutflow.json"):
        with pytest.raises(InputFileError, match=r"not from a complete run.*'running'"):
            check_output(out / name)
    # the checking reader the statistics commands use (load_hists reads the format only)
    with pytest.raises(InputFileError, match="killed, or still running"):
        load_histogram(str(out / "hists.root"), name="mjj")
    monkeypatch.undo()

    # 2. killed while writing: the new hists are written, cutflow.json is still the old
    # one and a temporary file is left behind
    real = processing.write_processed

    def half_written(run_out, out_dir):
        from adcoffea.outputs import save_hists

        save_hists(run_out.output.get("hists", {}), out_dir)
        (out_dir / ".cutflow.json.123.456.tmp").write_text('{"trunc')
        raise KeyboardInterrupt

    monkeypatch.setattr(processing, "write_processed", half_written)
    assert main(argv) == 130
    assert (out / ".cutflow.json.123.456.tmp").exists()
    with pytest.raises(InputFileError, match="not from a complete run"):
        load_histogram(str(out / "hists.pkl"), name="mjj")
    monkeypatch.setattr(processing, "write_processed", real)

    # 3. a complete run makes them current again, and clears the leftovers
    capsys.readouterr()
    assert main(argv) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["run_id"] != first_id
    assert not list(out.glob(".*.tmp"))
    assert load_hists(out / "hists.pkl")["mjj"].sum().value > 0
    # a file edited afterwards, or one the run did not write, is refused
    (out / "stray.json").write_text("{}")
    with pytest.raises(InputFileError, match="not an output of the last complete run"):
        check_output(out / "stray.json")
    (out / "cutflow.json").write_text("{}")
    with pytest.raises(InputFileError, match="changed since run"):
        check_output(out / "cutflow.json")
