"""The bad-input table of issue 12: input -> message -> exit code -> accounting, per executor.

Builds one good file and a set of bad ones (truncated, zero bytes, not ROOT, missing, a
renamed branch, NaN/inf kinematics, zero events, the same file twice, a corrupt basket, an
unreachable XRootD host on a refused loopback port, a file deleted after the pre-flight) in a
temporary directory, then runs the dijet processor over ``good + bad`` for each bad input on
each executor, and once over the whole bad fileset. Prints a Markdown table.

Usage::

    python benchmarks/bad_inputs.py [--executors iterative futures dask] [--out table.md]

The exit code column is what ``adcoffea process`` returns for that fileset (3: events lost,
2: a user error, 0: complete); never contacts a remote host.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import awkward as ak
import numpy as np

from adcoffea.synthetic.corrupt import overwrite_basket, read_nano, truncate_in_basket, write_nano

N = 1500
CHUNK = 500


def build(d: Path) -> tuple[Path, dict[str, str]]:
    from adcoffea.synthetic import generate

    gen = generate("qcd", n_events=2 * N, seed=11, out_dir=d / "gen", n_files=2, name="qcd")
    arrays = read_nano(gen.files[1])
    good = write_nano(d / "good.root", arrays, n_baskets=2)
    bad: dict[str, str] = {}
    bad["missing file"] = str(d / "missing.root")
    z = d / "zero_bytes.root"
    z.write_bytes(b"")
    bad["zero bytes"] = str(z)
    t = d / "not_root.root"
    t.write_text("this is a text file\n" * 100)
    bad["not ROOT"] = str(t)
    bad["truncated"] = str(truncate_in_basket(good, d / "truncated.root"))
    bad["corrupt 2nd basket"] = str(overwrite_basket(good, d / "corrupt_basket.root", basket=1))
    bad["renamed branch"] = str(
        write_nano(d / "renamed.root", arrays, rename={"FatJet_pt": "FatJet_ptRaw"})
    )
    nf = dict(arrays)
    for field, value in (("mass", np.nan), ("pt", np.inf)):
        jag = nf[f"FatJet_{field}"]
        flat = ak.to_numpy(ak.flatten(jag)).astype(np.float32).copy()
        starts = np.concatenate([[0], np.cumsum(ak.to_numpy(ak.num(jag)))[:-1]])
        flat[starts[: 40 : 2 if field == "mass" else 3]] = value
        nf[f"FatJet_{field}"] = ak.unflatten(flat, ak.num(jag))
    bad["NaN/inf kinematics"] = str(write_nano(d / "nonfinite.root", nf))
    bad["zero events"] = str(write_nano(d / "empty.root", {k: v[:0] for k, v in arrays.items()}))
    bad["same file twice"] = f"{good.parent}/./{good.name}"
    bad["unreachable XRootD"] = "root://127.0.0.1:1//store/data/never.root"
    v = d / "vanishing.root"
    shutil.copy(good, v)
    bad["deleted after pre-flight"] = str(v)
    return good, bad


def run_case(executor, good, paths, client, vanish=None):
    import adcoffea.execution.preflight as pf
    from adcoffea.errors import AdcoffeaError
    from adcoffea.execution import run_processor
    from adcoffea.processors import DijetProcessor

    real = pf.check_fileset
    if vanish is not None:
        backup = Path(vanish).with_suffix(".bak")
        shutil.copy(vanish, backup)

        def check_then_delete(*a, **k):
            out = real(*a, **k)
            Path(vanish).unlink()
            return out

        pf.check_fileset = check_then_delete
    try:
        res = run_processor(
            {"qcd": [str(good), *paths]},
            DijetProcessor(),
            executor=executor,
            workers=2,
            chunksize=CHUNK,
            status=False,
            client=client if executor == "dask" else None,
            timeout=3.0,
        )
    except AdcoffeaError as err:
        return None, str(err), 2
    finally:
        pf.check_fileset = real
        if vanish is not None:
            shutil.move(backup, vanish)
    code, _ = res.report.outcome("process")
    return res, None, code


def describe(res, path: str) -> tuple[str, str]:
    r = res.report
    reasons = list(dict.fromkeys(f.reason for f in r.failures if f.path == path))
    msgs = reasons[:1] + [f"(+{len(reasons) - 1} similar)"] * (len(reasons) > 1)
    msgs += [w.replace(path, "FILE") for w in r.warnings if path in w and "ROOT UUID" not in w]
    chunks = sum(1 for f in r.failures if f.path == path and f.entry_start is not None)
    files = sum(1 for f in r.failures if f.path == path and f.entry_start is None)
    acct = (
        f"total {r.events_total}, processed {r.events_processed}, failed {r.events_failed}"
        f" ({files} file, {chunks} chunks)"
    )
    nf = sum(n.events for n in r.nonfinite if n.path == path)
    if nf:
        acct += f"; finite_kinematics cut {nf}"
    if any(d[1] == path for d in r.duplicates):
        acct += "; listed twice, processed once"
    return "; ".join(msgs) or "-", acct


def bundle_and_config_rows(d: Path, good: Path, executors: list[str], client) -> list[str]:
    """Tampered model bundles (per executor) and semantically bad configs: exit 2, no run."""
    import hashlib
    import json

    from adcoffea.config import TrainConfig, load_config
    from adcoffea.errors import AdcoffeaError
    from adcoffea.execution import run_processor
    from adcoffea.models import toy
    from adcoffea.models.bundle import save_bundle
    from adcoffea.models.train import train_model
    from adcoffea.processors import DijetProcessor

    inputs, _ = toy.lhco_features(800, 0, seed=4)
    res = train_model("autoencoder", inputs, config=TrainConfig(epochs=1, seed=1), progress=False)
    src = save_bundle(res.bundle, d / "bundle")
    bundles = {}
    for how in ("weights checksum", "features reordered", "feature renamed", "feature dropped"):
        dst = d / how.replace(" ", "_")
        shutil.copytree(src, dst)
        md = json.loads((dst / "metadata.json").read_text())
        if how == "weights checksum":
            w = dst / "net_model.pt"
            data = bytearray(w.read_bytes())
            data[-10] ^= 0xFF  # one flipped byte inside the tensor data
            w.write_bytes(bytes(data))
        else:
            if how == "features reordered":
                md["features"] = md["features"][::-1]
            elif how == "feature renamed":
                md["features"][0] = "mj_lightest"
            else:
                md["features"] = md["features"][:-1]
            text = json.dumps(md, indent=2, sort_keys=True)
            (dst / "metadata.json").write_text(text)
            if how != "features reordered":  # a consistent digest: a buggy writer
                (dst / "metadata.sha256").write_text(hashlib.sha256(text.encode()).hexdigest())
        bundles[how] = dst
    rows = []
    for ex in executors:
        for how, path in bundles.items():
            t0 = time.perf_counter()
            try:
                run_processor(
                    {"qcd": [str(good)]},
                    DijetProcessor(bundles=(("ae", str(path)),)),
                    executor=ex,
                    client=client if ex == "dask" else None,
                    status=False,
                )
                msg, code = "accepted (!)", 0
            except AdcoffeaError as err:
                msg, code = str(err).replace(str(d), "TMP"), 2
            dt = time.perf_counter() - t0
            rows.append(f"| {ex} | bundle: {how} | {msg[:220]} | {code} | refused in {dt:.2f} s |")
    configs = {
        "reversed sidebands": "model: {method: cwola, sidebands: [4000, 3000]}",
        "SR not inside sidebands": (
            "model: {method: cwola, signal_region: [3300, 3700], sidebands: [3400, 4200]}"
        ),
        "reversed fit range": "fit: {range: [6000, 2000]}",
        "n_params [0, -1]": "fit: {n_params: [0, -1]}",
        "negative limit mass": "limits: {masses: [-500]}",
        "width_min > width_max": "bumphunt: {width_min: 5, width_max: 2}",
        "infinite eta cut": "selection: {jet_eta_max: .inf}",
        "duplicated key": "selection: {jet_pt_min: 1200}\nselection: {jet_pt_min: 500}",
    }
    for name, text in configs.items():
        cfg = d / "cfg.yaml"
        cfg.write_text(f"name: t\ndatasets: {{fileset: f.json}}\n{text}\n")
        try:
            load_config(cfg)
            msg, code = "accepted (!)", 0
        except AdcoffeaError as err:
            msg, code = " ".join(str(err).replace(str(d), "TMP").split()), 2
        rows.append(f"| (load) | config: {name} | {msg[:220]} | {code} | refused at load |")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--executors", nargs="+", default=["iterative", "futures", "dask"])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.ERROR)
    rows = [
        "| executor | input | message | exit | accounting (good + bad file) |",
        "|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        good, bad = build(Path(tmp))
        client = cluster = None
        if "dask" in args.executors:
            from adcoffea.execution import DaskSettings, dask_client

            settings = DaskSettings(workers=2, dashboard=False)
            client, cluster = dask_client(settings), settings._cluster
        try:
            for ex in args.executors:
                t0 = time.perf_counter()
                for name, path in bad.items():
                    vanish = path if name == "deleted after pre-flight" else None
                    res, err, code = run_case(ex, good, [path], client, vanish)
                    if res is None:
                        msg, acct = err.replace(path, "FILE"), "run refused (no outputs)"
                    else:
                        msg, acct = describe(res, path)
                    msg = msg.replace(tmp, "TMP").replace("|", "/")[:300]
                    rows.append(f"| {ex} | {name} | {msg} | {code} | {acct} |")
                paths = [p for n, p in bad.items() if n != "deleted after pre-flight"]
                res, err, code = run_case(ex, good, paths, client)
                if res is None:  # refused before processing (e.g. no XRootD client installed)
                    msg = err.replace(tmp, "TMP").replace("|", "/")[:300]
                    rows.append(
                        f"| {ex} | **all of them at once** | {msg} | {code} | run refused |"
                    )
                    continue
                r = res.report
                rows.append(
                    f"| {ex} | **all of them at once** | {len(r.failures)} failures in "
                    f"{len({f.path for f in r.failures})} files, {len(r.warnings)} warnings | "
                    f"{code} | total {r.events_total}, processed {r.events_processed}, failed "
                    f"{r.events_failed}; closes: "
                    f"{r.events_processed + r.events_failed == r.events_total} |"
                )
                print(f"# {ex}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            rows += bundle_and_config_rows(Path(tmp), good, args.executors, client)
        finally:
            if client is not None:
                client.close()
                cluster.close()
    text = "\n".join(rows)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
