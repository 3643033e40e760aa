"""Running part of the study matrix: which conditions a selection scores and which it needs."""

import pytest

from ptystudy.conditions import Condition, Selection, conditions, needed_conditions, selected_conditions
from ptystudy.config import Arm, ConfigError
from ptystudy.profiles import resolve_config


def test_no_selection_is_the_whole_matrix(smoke_config):
    assert selected_conditions(smoke_config, Selection()) == conditions(smoke_config)


def test_a_selection_scores_its_conditions_and_needs_their_training_views(smoke_config):
    selection = Selection(doses=(1000.0,), views=("dense",), splits=("test",))
    selected = selected_conditions(smoke_config, selection)
    assert selected == [Condition(1000.0, "dense", "test")]
    # the networks scored on the test split are trained on the train split's view
    assert needed_conditions(smoke_config, selected) == [
        Condition(1000.0, "dense", "train"),
        Condition(1000.0, "dense", "test"),
    ]
    no_networks = smoke_config.model_copy(update={"training": smoke_config.training.model_copy(update={"arms": ()})})
    assert needed_conditions(no_networks, selected) == selected
    assert selection.describe() == "dose 1e3; view dense; split test"


def test_a_selection_outside_the_plan_is_refused_naming_what_exists(smoke_config):
    with pytest.raises(ConfigError, match=r"--dose 7: not a dose of the plan \(1e3, 1e4, 1e5\)"):
        selected_conditions(smoke_config, Selection(doses=(7.0,)))
    with pytest.raises(ConfigError, match=r"--view wide: not a view of the plan \(dense, sparse\)"):
        selected_conditions(smoke_config, Selection(views=("wide",)))
    with pytest.raises(ValueError, match="split"):
        Selection(splits=("validation",))


def test_arms_are_selected_on_the_command_line_and_leave_lsqml_running():
    from flows.study import cli_overrides, get_parser

    args = get_parser().parse_args(["--arm", "pinn", "--arm", "pinn_gs1", "--arm", "pinn", "--set", "scan.doses=[10]"])
    assert cli_overrides(args) == {"scan.doses": [10], "training.arms": ["pinn", "pinn_gs1"]}
    assert "training.arms" not in cli_overrides(get_parser().parse_args([]))
    with pytest.raises(SystemExit):
        get_parser().parse_args(["--arm", "lsqml"])  # the reference always runs
    assert resolve_config("smoke", overrides=cli_overrides(args)).training.arms == (Arm.PINN, Arm.PINN_GS1)


def test_an_arm_is_trained_with_the_same_settings_whatever_else_is_selected():
    """The training task's cache key holds ``for_arm``'s settings: selecting other arms
    (or all five) reuses the networks already trained."""
    every = resolve_config("smoke").training
    alone = resolve_config("smoke", overrides={"training.arms": ["pinn_gs1"]}).training
    assert every.arms == (Arm.PINN, Arm.PINN_SHARED, Arm.PINN_GS1, Arm.SUPERVISED)
    assert every.for_arm(Arm.PINN_GS1) == alone.for_arm(Arm.PINN_GS1)
    assert every.for_arm(Arm.PINN) != every.for_arm(Arm.PINN_GS1)
