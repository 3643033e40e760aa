"""Running part of the study matrix: which conditions a selection scores and which it needs."""

import pytest

from ptystudy.conditions import Condition, Selection, conditions, needed_conditions, selected_conditions
from ptystudy.config import ConfigError


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
