"""The study's answer on a known table: the best network against LSQML per condition, the
verdicts, the crossover edges, the map figure and the generated sentences."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.image import imread

from ptystudy.evaluate.statistics import (
    LSQML_AHEAD,
    LSQML_BETTER,
    NETWORK_AHEAD,
    NETWORK_BETTER,
    NO_DIFFERENCE,
    best_network_against_lsqml,
    summarise,
)
from ptystudy.report.findings import (
    crossover_edges,
    crossover_map_figure,
    findings,
    findings_markdown,
    map_cells,
    plot_crossover_map,
)

OVERLAPS = {"touching": 0.0, "dense": 0.7}
DOSES = (10.0, 1e3, 1e5)
# per (dose, view): replicate scores of lsqml, pinn, pinn_gs1 (phase MS-SSIM, test split).
# At 10 photons without overlap a network wins; at 1e5 LSQML wins everywhere; one tie.
KNOWN = {
    (10.0, "touching"): ([0.20, 0.22, 0.21], [0.40, 0.41, 0.42], [0.30, 0.31, 0.29]),
    (10.0, "dense"): ([0.30, 0.35, 0.25], [0.31, 0.29, 0.33], [0.10, 0.12, 0.11]),
    (1e3, "touching"): ([0.50, 0.52, 0.51], [0.45, 0.44, 0.46], [0.60, 0.61, 0.62]),
    (1e3, "dense"): ([0.90, 0.91, 0.92], [0.70, 0.71, 0.72], [0.69, 0.70, 0.71]),
    (1e5, "touching"): ([0.95, 0.96, 0.97], [0.80, 0.81, 0.79], [0.78, 0.77, 0.79]),
    (1e5, "dense"): ([0.99, 0.99, 0.99], [0.80, 0.82, 0.81], [0.79, 0.80, 0.81]),
}


def _known_table(replicates: int = 3) -> pd.DataFrame:
    rows = []
    for (dose, view), scores in KNOWN.items():
        for arm, values in zip(("lsqml", "pinn", "pinn_gs1"), scores, strict=True):
            for component in ("phase", "amplitude"):
                for replicate, value in enumerate(values[:replicates]):
                    rows.append(
                        {
                            "dose": dose,
                            "view": view,
                            "split": "test",
                            "arm": arm,
                            "component": component,
                            "metric": "ms_ssim",
                            "value": value,
                            "replicate": replicate,
                        }
                    )
        rows.append({**rows[-1], "arm": "flat", "value": 0.05})  # never a network, never best
    return pd.DataFrame(rows)


def test_the_best_network_is_compared_with_lsqml_cell_by_cell():
    crossover = best_network_against_lsqml(_known_table())
    phase = crossover[crossover.component == "phase"].set_index(["dose", "view"])
    assert len(phase) == 6
    expected = {
        (10.0, "touching"): ("pinn", NETWORK_BETTER),
        (10.0, "dense"): ("pinn", NO_DIFFERENCE),
        (1e3, "touching"): ("pinn_gs1", NETWORK_BETTER),
        (1e3, "dense"): ("pinn", LSQML_BETTER),
        (1e5, "touching"): ("pinn", LSQML_BETTER),
        (1e5, "dense"): ("pinn", LSQML_BETTER),
    }
    for cell, (arm, winner) in expected.items():
        assert (phase.loc[cell, "best_arm"], phase.loc[cell, "winner"]) == (arm, winner), cell
    touching = phase.loc[(10.0, "touching")]
    assert touching.mean_difference == pytest.approx(0.2) and touching.n == 3
    assert touching.ci_low > 0 and touching.lsqml_mean == pytest.approx(0.21)


def test_one_replicate_gives_the_side_of_the_difference_without_an_interval():
    crossover = best_network_against_lsqml(_known_table(replicates=1))
    phase = crossover[crossover.component == "phase"].set_index(["dose", "view"])
    assert phase.loc[(10.0, "touching"), "winner"] == NETWORK_AHEAD
    assert phase.loc[(1e5, "dense"), "winner"] == LSQML_AHEAD
    assert phase.n.eq(1).all() and phase.ci_low.isna().all()


def test_the_crossover_runs_between_cells_whose_winners_differ():
    sides = np.array([[1.0, 1.0, -1.0], [0.0, -1.0, np.nan]])  # rows: overlaps, columns: doses
    edges = set(crossover_edges(sides))
    assert edges == {
        ((1.5, 1.5), (-0.5, 0.5)),  # (0, 1) | (0, 2)
        ((-0.5, 0.5), (0.5, 0.5)),  # (0, 0) above (1, 0)
        ((0.5, 1.5), (0.5, 0.5)),  # (0, 1) above (1, 1)
        ((0.5, 0.5), (0.5, 1.5)),  # (1, 0) | (1, 1)
    }
    assert crossover_edges(np.ones((2, 3))) == []


def test_the_map_places_views_by_overlap_and_is_drawn(tmp_path):
    crossover = best_network_against_lsqml(_known_table())
    cells = map_cells(crossover, "phase", OVERLAPS)
    assert list(cells.view[:3]) == ["touching"] * 3 and list(cells.dose[:3]) == list(DOSES)
    path = plot_crossover_map(tmp_path / "map.png", crossover, OVERLAPS)
    image = imread(path)
    assert image.shape[0] > 300 and image.shape[1] > 600
    assert image[..., :3].std() > 0.1, "a drawn figure, not a blank canvas"


def test_the_map_legend_explains_the_verdicts_it_shows():
    """Three replicates give intervals: the legend has no one-replicate marks; one replicate
    gives only those."""
    for replicates, shown, absent in ((3, "NN: network better", "NN?"), (1, "NN?: network ahead", "LS: LSQML")):
        figure = crossover_map_figure(best_network_against_lsqml(_known_table(replicates)), OVERLAPS)
        labels = [text.get_text() for text in figure.legends[0].get_texts()]
        assert any(label.startswith(shown) for label in labels), labels
        assert not any(label.startswith(absent) for label in labels), labels


def test_every_cell_label_of_a_five_dose_map_fits_its_cell():
    """The map profile's 5 doses x 4 views: each cell's text (difference, verdict, best arm)
    stays inside its cell, whichever arm is best (the long titles once overflowed)."""
    arms = ("pinn", "pinn_shared", "pinn_gs1", "supervised")
    rows = [
        {
            "dose": dose,
            "view": view,
            "split": "test",
            "component": component,
            "metric": "ms_ssim",
            "arm": arm,
            "replicate": 0,
            "value": 0.5 + 0.1 * (arm == "lsqml"),
        }
        for dose in (10.0, 100.0, 1e3, 1e4, 1e5)
        for view in ("touching", "sparse", "medium", "dense")
        for component in ("phase", "amplitude")
        for arm in (*arms, "lsqml")
    ]
    crossover = best_network_against_lsqml(pd.DataFrame(rows))
    crossover["best_arm"] = [arms[i % len(arms)] for i in range(len(crossover))]
    figure = crossover_map_figure(crossover, {"touching": 0.0, "sparse": 0.2, "medium": 0.4, "dense": 0.7})
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    for axes in figure.axes[:2]:
        cell = axes.get_window_extent(renderer).width / 5
        labels = [text for text in axes.texts if "LS" in text.get_text()]
        assert len(labels) == 20
        for text in labels:
            assert text.get_window_extent(renderer).width < 0.95 * cell, text.get_text()


def test_the_findings_say_where_a_network_wins_and_by_how_much():
    table = _known_table()
    crossover = best_network_against_lsqml(table)
    paragraphs = findings(crossover, summarise(table), OVERLAPS)
    phase = paragraphs[0]
    assert phase.startswith("Phase MS-SSIM, test split, 6 conditions.")
    assert "Highest mean score: LSQML (pty-chi) in 3, PtychoPINN gs2 in 2, PtychoPINN gs1 in 1." in phase
    assert "A network beats LSQML (pty-chi) in 2: 1e1 photons, touching: PtychoPINN gs2 by +0.200 [" in phase
    assert "LSQML (pty-chi) beats the best network in 3, by 0.160 to 0.200." in phase
    assert "No detectable difference in 1e1 dense (+0.010 [" in phase
    assert "The winner changes across the map" in phase
    assert len(paragraphs) == 2, "phase and amplitude; three replicates need no caveat"
    one = findings(best_network_against_lsqml(_known_table(1)), summarise(_known_table(1)), OVERLAPS)
    assert one[-1].startswith("One replicate:")
    markdown = findings_markdown(paragraphs, tmp_map := None)
    assert markdown.startswith("## Findings") and tmp_map is None and "- Phase MS-SSIM" in markdown


def test_nothing_to_compare_is_said_plainly():
    table = _known_table()
    only_networks = table[table.arm != "lsqml"]
    crossover = best_network_against_lsqml(only_networks)
    assert crossover.empty
    assert findings(crossover, summarise(only_networks), OVERLAPS) == [
        "No condition was scored by both LSQML and a network: there is nothing to compare."
    ]


def test_a_win_between_two_failed_reconstructions_is_called_so():
    """Where neither the best network nor LSQML scores 0.1 above the flat image, the
    findings say both failed instead of letting the sign of their difference stand."""
    table = _known_table()
    flat = table[(table.arm == "lsqml") & (table.component == "phase")].assign(arm="flat", value=0.25)
    table = pd.concat([table, flat], ignore_index=True)
    phase = findings(best_network_against_lsqml(table), summarise(table), OVERLAPS)[0]
    assert "In 1 (1e1 dense) neither the best network nor LSQML scores 0.1 above the flat image" in phase
    # 1e1 touching: LSQML 0.21 against the flat 0.25, the best network 0.41
    assert "In 1 (1e1 touching) LSQML (pty-chi) scores less than 0.1 above the flat image" in phase
    assert "the networks failed" not in phase


def test_a_network_that_failed_where_lsqml_did_not_is_called_so():
    """1e3 dense: LSQML 0.91, the best network 0.71, the flat image 0.65 there (0.05 elsewhere)."""
    table = _known_table()
    flat = table[(table.arm == "lsqml") & (table.component == "phase")].assign(arm="flat", value=0.05)
    flat.loc[(flat.dose == 1e3) & (flat.view == "dense"), "value"] = 0.65
    table = pd.concat([table, flat], ignore_index=True)
    phase = findings(best_network_against_lsqml(table), summarise(table), OVERLAPS)[0]
    assert (
        "In 1 (1e3 dense) the best network scores less than 0.1 above the flat image and LSQML (pty-chi) "
        "more: the networks failed there."
    ) in phase
    assert "both failed" not in phase and "LSQML failed" not in phase
