"""The study configuration: defaults, profiles, YAML, overrides and clear errors."""

import pytest

from ptystudy.conditions import conditions
from ptystudy.config import ConfigError, Profile, StudyConfig
from ptystudy.profiles import parse_override, resolve_config
from ptystudy.scan.plan import check_plan


def test_defaults_are_the_design_plan():
    config = StudyConfig()
    assert config.scan.doses == (1e3, 1e4, 1e5)
    assert config.views.overlaps == {"dense": 0.7, "sparse": 0.2}
    assert (config.views.neighbours, config.views.group_size) == (7, 4)
    assert config.scan.patch_size_px == 64
    assert config.scan.specimen == "stationary"
    assert (config.seeds.simulation, config.seeds.grouping, config.seeds.subsampling) == (42, 123, 456)


@pytest.mark.parametrize("profile", [profile for profile in Profile if profile is not Profile.MAP])
def test_profiles_keep_the_plan_shape(profile):
    config = resolve_config(profile)
    assert config.profile is profile
    assert config.scan.doses == StudyConfig().scan.doses
    assert config.views.overlaps == StudyConfig().views.overlaps


def test_the_map_profile_is_the_quick_study_over_the_whole_dose_x_overlap_map():
    """The one profile that changes the plan's shape, on purpose: doses 1e1-1e5, overlaps
    f = 0-0.7, three replicates, everything else as quick (the quick study's cells are the
    map's 1e3-1e5 x dense/sparse cells)."""
    quick, study_map = resolve_config("quick"), resolve_config("map")
    assert study_map.scan.doses == (10, 100, 1000, 10_000, 100_000) and study_map.replicates == 3
    assert sorted(study_map.views.overlaps.values()) == [0.0, 0.2, 0.4, 0.7]
    assert {name: f for name, f in study_map.views.overlaps.items() if name in quick.views.overlaps} == dict(
        quick.views.overlaps
    )
    assert (study_map.training, study_map.lsqml) == (quick.training, quick.lsqml)
    assert study_map.scan.model_copy(update={"doses": quick.scan.doses}) == quick.scan
    assert len(conditions(study_map)) == 40 and check_plan(study_map)


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("scan:\n  doses: [100, 1000]\nseeds:\n  simulation: 7\n")
    config = resolve_config("smoke", config_file=path, overrides={"scan.doses": [5000]})
    assert config.scan.doses == (5000,)
    assert config.seeds.simulation == 7
    assert config.scan.patch_size_px == 32  # from the smoke profile


def test_a_mapping_in_a_file_changes_only_the_fields_it_names(tmp_path):
    """views: {overlaps: {dense: 0.8}} keeps the sparse view (it used to be dropped);
    a view set to null is removed."""
    path = tmp_path / "study.yaml"
    path.write_text("views:\n  overlaps: {dense: 0.8}\ntraining:\n  max_epochs: 7\n")
    config = resolve_config("quick", config_file=path)
    assert config.views.overlaps == {"dense": 0.8, "sparse": 0.2}
    assert config.training.max_epochs == 7 and config.training.min_samples == 1500  # the profile's
    path.write_text("views:\n  overlaps: {sparse: null, wide: 0.5}\n")
    assert resolve_config("smoke", config_file=path).views.overlaps == {"dense": 0.7, "wide": 0.5}
    assert resolve_config("smoke", overrides={"views.overlaps.dense": 0.6}).views.overlaps["dense"] == 0.6


def test_config_is_frozen():
    with pytest.raises(Exception, match="frozen"):
        StudyConfig().scan.patch_size_px = 8


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"scan.doses": [1000, -5]}, r"scan\.doses: .*whole number of photons"),
        ({"scan.colour": "red"}, r"scan\.colour: unknown field"),
        ({"views.overlaps": {"dense": 1.2}}, r"views\.overlaps: .*must be in \(-1, 1\)"),
        ({"scan.patch_size_px": 36}, r"scan\.patch_size_px: .*multiple of 8"),
        ({"views.group_size": 9}, r"group_size - 1 \(8\) cannot exceed neighbours \(7\)"),
        ({"scan.specimen": "fly"}, r"scan\.specimen: .*'stationary' or 'large_features'"),
        ({"training.min_samples": 2}, r"training\.min_samples: .*greater than or equal to 8"),
        ({"lsqml.check_every": 1}, r"lsqml\.check_every: .*greater than or equal to 2"),
    ],
)
def test_invalid_values_name_the_field(overrides, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config("smoke", overrides=overrides)


def test_unknown_profile_and_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="unknown profile 'huge'"):
        resolve_config("huge")
    with pytest.raises(ConfigError, match="cannot read config file"):
        resolve_config("smoke", config_file=tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        resolve_config("smoke", config_file=bad)


def test_parse_override():
    assert parse_override("scan.doses=[1000, 10000]") == ("scan.doses", [1000, 10000])
    with pytest.raises(ConfigError, match="section.field=value"):
        parse_override("scan.doses")


def test_an_empty_study_matrix_is_an_error():
    with pytest.raises(ConfigError, match=r"scan\.doses"):
        resolve_config("smoke", overrides={"scan.doses": []})
    with pytest.raises(ConfigError, match=r"views\.overlaps"):
        resolve_config("smoke", overrides={"views.overlaps": {"dense": None, "sparse": None}})
    from ptystudy.run.ledger import StudyLedger

    with pytest.raises(ValueError, match="the study matrix is empty"):
        StudyLedger([])


def test_the_report_shows_only_the_settings_that_differ_from_the_profile():
    from ptystudy.profiles import changed_settings

    assert changed_settings(resolve_config("quick")) == []
    config = resolve_config(
        "quick", overrides={"scan.doses": [10], "views.overlaps": {"sparse": None}, "training.arms": ["pinn"]}
    )
    rows = {row["setting"]: (row["value"], row["profile default"]) for row in changed_settings(config)}
    assert rows == {
        "scan.doses": ([10.0], [1000.0, 10000.0, 100000.0]),
        "views.overlaps": ({"dense": 0.7}, {"dense": 0.7, "sparse": 0.2}),
        "training.arms": (["pinn"], ["pinn", "pinn_shared", "pinn_gs1", "supervised"]),
    }
