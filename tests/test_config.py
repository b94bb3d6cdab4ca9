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
