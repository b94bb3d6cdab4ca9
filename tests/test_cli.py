"""The command line: the lazy registry, the shared options, and commands against mocks."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import hist
import numpy as np
import pytest

from adcoffea.cli import COMMANDS, build_parser, main


def _subparser(parser, command):
    return parser._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]


def test_every_command_has_its_module():
    for name in COMMANDS:
        sub = _subparser(build_parser([name]), name)
        main_function = sub.get_default("_main")
        assert main_function.__module__ == f"adcoffea.cli.{name}", name


def test_help_imports_no_command_module():
    code = (
        "import sys, adcoffea.cli as c; c.build_parser([]);"
        "print(sorted(m for m in sys.modules if m.startswith('adcoffea.cli.') "
        "or m in ('adcoffea.pipeline', 'coffea', 'torch', 'zfit')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_executor_options_are_shared_and_run_defers_to_the_config():
    def options(command, extra):
        parser = build_parser([command])
        sub = _subparser(parser, command)
        flags = {s for a in sub._actions for s in a.option_strings}
        return flags, vars(parser.parse_args([command, *extra]))

    executor_flags = {
        "--executor",
        "--workers",
        "--scheduler",
        "--chunksize",
        "--retries",
        "--strict",
        "--resume",
    }
    run_flags, run_args = options("run", ["c.yaml"])
    proc_flags, proc_args = options("process", ["f.json"])
    assert executor_flags <= run_flags and executor_flags <= proc_flags
    # run: every option left out is None, so the config's executor block decides
    assert all(run_args[f[2:]] is None for f in executor_flags)
    # process has no config: ExecutorConfig's defaults
    assert (proc_args["executor"], proc_args["workers"], proc_args["retries"]) == ("futures", 2, 3)


class _Done:
    """What the CLI reads of a run's result: the exit status of its event accounting."""

    class report:
        @staticmethod
        def outcome(command, *, allow_failures):
            return 0, ""


def test_run_passes_its_options_to_the_pipeline(tmp_path, monkeypatch):
    import adcoffea.pipeline

    seen = {}

    def fake_run(cfg, **kw):
        seen.update(cfg=cfg, **kw)
        return _Done()

    monkeypatch.setattr(adcoffea.pipeline, "run", fake_run)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: c\ndatasets: {fileset: f.json}\n")
    rc = main(["run", str(cfg), "--retries", "0", "--workers", "3", "--no-statistics"])
    assert rc == 0
    assert seen["retries"] == 0 and seen["workers"] == 3 and seen["statistics"] is False
    assert seen["executor"] is None and seen["cfg"].name == "c"


@pytest.fixture
def bump_file(tmp_path):
    edges = np.linspace(1000.0, 3000.0, 41)
    centres = 0.5 * (edges[1:] + edges[:-1])
    bkg = 2000.0 * np.exp(-(centres - 1000.0) / 500.0)
    data = np.random.default_rng(5).poisson(bkg).astype(float)
    data[20:22] += 6 * np.sqrt(bkg[20:22])  # a 2-bin excess at 2000-2100 GeV

    def h(values):
        out = hist.Hist(hist.axis.Variable(edges, name="mjj"))
        out.view()[:] = values
        return out

    path = tmp_path / "h.pkl"
    path.write_bytes(pickle.dumps({"data": h(data), "bkg": h(bkg)}))
    return path


def test_bumphunt_command_finds_the_excess(bump_file, tmp_path, capsys):
    out = tmp_path / "bh"
    argv = ["bumphunt", str(bump_file), "--data", "data", "--background", "bkg"]
    rc = main([*argv, "--toys", "200", "--out", str(out)])
    assert rc == 0
    res = json.loads((out / "bumphunter.json").read_text())
    assert res["bump_lo"][0] <= 2050.0 <= res["bump_hi"][0]
    assert res["local_z"] > 4
    assert {p.name for p in out.glob("*.png")} == {"bump.png", "t_distribution.png"}
    assert f"wrote {out}/bumphunter.json" in capsys.readouterr().out


def test_bumphunt_command_names_a_missing_histogram(bump_file, capsys):
    rc = main(["bumphunt", str(bump_file), "--data", "data", "--background", "qcd"])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"{bump_file}: no histogram 'qcd'; has ['bkg', 'data']" in err
    assert "Traceback" not in err


def test_main_prints_progress_and_leaves_logging_as_it_was(tmp_path, monkeypatch, capsys):
    import logging

    import adcoffea.pipeline

    def fake_run(cfg, **kw):
        logging.getLogger("adcoffea.pipeline").info("[adcoffea] inputs ...")
        logging.getLogger("adcoffea.execution").warning("FAILED x.root")
        return _Done()

    monkeypatch.setattr(adcoffea.pipeline, "run", fake_run)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: c\ndatasets: {fileset: f.json}\n")
    root, package = logging.getLogger(), logging.getLogger("adcoffea")
    before = (list(root.handlers), root.level, package.level)
    assert main(["run", str(cfg)]) == 0
    out, err = capsys.readouterr()
    assert out == "[adcoffea] inputs ...\n"  # progress: stdout, as a plain line
    assert "WARNING adcoffea.execution: FAILED x.root" in err
    assert (list(root.handlers), root.level, package.level) == before
    logging.getLogger("adcoffea.pipeline").info("after the command: not printed")
    assert capsys.readouterr().out == ""
