import pytest

from adcoffea.config import load_config, parse_config
from adcoffea.errors import ConfigError


def _minimal(**extra):
    return {"name": "t", "datasets": {"fileset": "files.json"}, **extra}


def test_defaults_follow_the_dijet_selection():
    cfg = parse_config(_minimal())
    assert cfg.selection.jet_pt_min == 1200.0
    assert cfg.selection.jet_eta_max == 2.5
    assert [r.name for r in cfg.regions] == ["inclusive"]


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"selection\.jet_pt_mn"):
        parse_config(_minimal(selection={"jet_pt_mn": 100}))


def test_bad_value_is_named():
    bad = {
        "name": "t",
        "datasets": {"synthetic": {"samples": [{"name": "q", "process": "qcd", "events": -1}]}},
    }
    with pytest.raises(ConfigError, match=r"datasets\.synthetic\.samples\.0\.events"):
        parse_config(bad)


def test_exactly_one_event_source():
    with pytest.raises(ConfigError, match="exactly one"):
        parse_config({"name": "t", "datasets": {}})


def test_score_region_requires_a_model():
    with pytest.raises(ConfigError, match="no model is given"):
        parse_config(_minimal(regions=[{"name": "hi", "score_min": 0.5}]))


def test_yaml_is_loaded_safely(tmp_path):
    # A python-object tag must be refused, never executed.
    p = tmp_path / "evil.yaml"
    p.write_text("name: !!python/object/apply:os.system ['echo pwned']\ndatasets: {fileset: f}\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_regions_name_known_models():
    models = [{"method": "cwola"}, {"method": "autoencoder", "name": "ae"}]
    cfg = parse_config(
        _minimal(
            models=models,
            regions=[
                {"name": "inclusive"},
                {"name": "w", "efficiency": 0.01},
                {"name": "a", "model": "ae", "score_min": 0.5},
            ],
        )
    )
    assert [cfg.region_model(r) for r in cfg.regions] == [None, "cwola", "ae"]
    with pytest.raises(ConfigError, match="unknown model 'vae'"):
        parse_config(
            _minimal(
                models=models,
                regions=[{"name": "inclusive"}, {"name": "x", "model": "vae", "score_min": 0.1}],
            )
        )
    with pytest.raises(ConfigError, match="model names must be unique"):
        parse_config(_minimal(models=[{"method": "vae"}, {"method": "vae"}]))


# --------------------------------------------------------------------------------------
# semantic checks at load time, naming the key (issue 12, item 11)
# --------------------------------------------------------------------------------------
_AE = {"method": "cwola"}


@pytest.mark.parametrize(
    "extra, key, text",
    [
        # weak supervision windows
        ({"model": {**_AE, "signal_region": [3600, 3300]}}, "model", "signal_region"),
        ({"model": {**_AE, "sidebands": [4000, 3000]}}, "model", "sidebands"),
        (
            {"model": {**_AE, "signal_region": [3300, 3700], "sidebands": [3400, 4200]}},
            "model",
            "must enclose signal_region",
        ),
        (
            {"model": {**_AE, "signal_region": [3300, 3700], "sidebands": [2800, 3700]}},
            "model",
            "must enclose signal_region",
        ),
        # fits
        ({"fit": {"range": [6000, 2000]}}, "fit", "range [6000.0, 2000.0]"),
        ({"fit": {"exclude": [3500, 3500]}}, "fit", "exclude"),
        ({"fit": {"n_params": [0, -1]}}, "fit", "n_params [0, -1]: [0, -1] not available"),
        ({"fit": {"n_params": [3, 7]}}, "fit", "takes 2 to 5 parameters"),
        ({"fit": {"n_params": []}}, "fit", "at least one order"),
        # limits
        ({"limits": {"masses": [3000, -500]}}, "limits", "masses must be positive"),
        ({"limits": {"masses_x": [0]}}, "limits", "masses_x must be positive"),
        # BumpHunter
        ({"bumphunt": {"width_min": 5, "width_max": 2}}, "bumphunt", "width_min 5 is larger"),
        (
            {"bumphunt": {"width_min": [2, 1], "width_max": [3, 0]}},
            "bumphunt",
            "on axis 1",
        ),
        ({"bumphunt": {"width_min": 0}}, "bumphunt", "at least 1 bin"),
        ({"bumphunt": {"scan_range": [5000, 2000]}}, "bumphunt", "scan_range"),
        # selection: an infinite or NaN cut
        ({"selection": {"jet_eta_max": float("inf")}}, "selection.jet_eta_max", "finite"),
        ({"selection": {"jet_pt_min": float("nan")}}, "selection.jet_pt_min", "finite"),
        # score windows
        (
            {
                "model": _AE,
                "regions": [
                    {"name": "inclusive"},
                    {"name": "w", "score_min": 0.9, "score_max": 0.2},
                ],
            },
            "regions.1",
            "score_min 0.9 must be below score_max 0.2",
        ),
    ],
)
def test_semantic_errors_are_named_at_load_time(extra, key, text):
    """Before: accepted here, failing at training (after generation and processing) or never."""
    with pytest.raises(ConfigError) as info:
        parse_config(_minimal(**extra))
    msg = str(info.value)
    assert f"  {key}" in msg and text in msg, msg


def test_sensible_windows_are_accepted():
    cfg = parse_config(
        _minimal(
            model={**_AE, "signal_region": [3300, 3700], "sidebands": [2800, 4200]},
            fit={"range": [1500, 8000], "n_params": [2, 5]},
            bumphunt={"width_min": [1, 2], "width_max": 4},
            limits={"masses": [3000.0], "masses_x": [100.0]},
        )
    )
    assert cfg.model.sidebands == (2800, 4200)


def test_duplicated_yaml_key_is_refused(tmp_path):
    """Before: the last of the two silently won."""
    p = tmp_path / "dup.yaml"
    p.write_text(
        "name: t\ndatasets: {fileset: f.json}\nselection:\n  jet_pt_min: 1200\n"
        "  jet_eta_max: 2.5\n  jet_pt_min: 500\n"
    )
    with pytest.raises(
        ConfigError, match=r"line 6: found duplicated key 'jet_pt_min' \(first given on line 4\)"
    ):
        load_config(p)
    p.write_text("name: t\ndatasets: {fileset: f.json}\nname: u\n")
    with pytest.raises(ConfigError, match="duplicated key 'name'"):
        load_config(p)
    # the same key in two different mappings is fine
    p.write_text(
        "name: t\ndatasets: {fileset: f.json}\nfit: {range: [1, 2]}\nbumphunt: {seed: 1}\n"
    )
    assert load_config(p).fit.range == (1.0, 2.0)
