"""The dose x overlap ptychography study flow (DESIGN §1, §9, §10).

    python flows/study.py [--profile smoke|quick|paper] [--config FILE.yaml] [--out DIR]
                          [--fresh] [--set section.field=value ...]

Exit status 0 only when every condition succeeded.
"""

from __future__ import annotations

from flows._environment import configure_prefect_environment

configure_prefect_environment()

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from prefect import flow, get_run_logger  # noqa: E402
from prefect.artifacts import (  # noqa: E402
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.futures import PrefectFuture  # noqa: E402

from ptystudy.config import ConfigError, StudyConfig, parse_override, resolve_config  # noqa: E402
from ptystudy.errors import InfeasibleViewError  # noqa: E402
from ptystudy.files import sha256_file, write_json, write_text  # noqa: E402
from ptystudy.layout import RunLayout, Split  # noqa: E402
from ptystudy.manifest import build_manifest  # noqa: E402
from ptystudy.plan import Condition, check_plan, conditions, derived_seed  # noqa: E402
from ptystudy.records import CompareRecord, ModelRecord, ReconRecord, ScanRecord, ViewRecord  # noqa: E402
from ptystudy.summary import StudyLedger, summary_markdown  # noqa: E402
from tasks._prefect import for_run  # noqa: E402
from tasks.compare import compare_condition  # noqa: E402
from tasks.reconstruct import reconstruct_lsqml  # noqa: E402
from tasks.report import build_report  # noqa: E402
from tasks.simulate import simulate_scan  # noqa: E402
from tasks.train import infer_arm, train_arm  # noqa: E402
from tasks.views import select_view  # noqa: E402


class StudyFailed(RuntimeError):
    """Raised after publishing, when at least one condition failed."""


@flow(name="dose-overlap-study")
def study(
    profile: str = "quick",
    config_file: str | None = None,
    out: str | None = None,
    fresh: bool = False,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run phases C-G of the study for every dose x view x split; publish the report.

    Fails (after publishing) when any condition failed in any phase.
    """
    config = resolve_config(profile, config_file=config_file, overrides=overrides)
    layout = RunLayout(Path(out or f"runs/{config.profile}").resolve())
    logger = get_run_logger()
    diameter = check_plan(config)
    logger.info(
        "%s profile: %d conditions, probe footprint D = %.1f px, output in %s",
        config.profile,
        len(conditions(config)),
        diameter,
        layout.root,
    )
    ledger = StudyLedger(conditions(config))
    scans = run_simulation(config, layout, ledger, fresh=fresh)
    views = run_views(config, layout, ledger, scans, fresh=fresh)
    models = run_training(config, layout, ledger, views, fresh=fresh)
    recons = run_inference(config, layout, ledger, views, models, fresh=fresh)
    recons.update(run_lsqml(config, layout, ledger, views, fresh=fresh))
    compared = run_compare(config, layout, ledger, views, recons, fresh=fresh)
    summary = ledger.summary()
    records = [*scans.values(), *views.values(), *models.values(), *recons.values(), *compared.values()]
    publish(config, layout, summary, records, list(compared.values()))
    if summary["n_failed"]:
        raise StudyFailed(f"{summary['n_failed']} of {summary['n_conditions']} conditions failed")
    return summary


def run_simulation(
    config: StudyConfig, layout: RunLayout, ledger: StudyLedger, *, fresh: bool
) -> dict[tuple[float, str], ScanRecord]:
    """Phase C mapped over doses; a failed dose fails all its conditions."""
    simulate = for_run(simulate_scan, layout.cache_dir, fresh=fresh)
    object_file = config.scan.object_file
    object_sha256 = sha256_file(Path(object_file)) if object_file else None
    futures = {
        float(dose): simulate.submit(config.scan, config.seeds, float(dose), str(layout.root), object_sha256)
        for dose in config.scan.doses
    }

    def fail_dose(dose: float, error: str) -> None:
        for condition in ledger.conditions:
            if condition.dose == dose:
                ledger.fail(condition, "simulate", error)

    scans: dict[tuple[float, str], ScanRecord] = {}
    for dose, records in collect("simulate", futures.items(), len(futures), ledger, fail_dose).items():
        scans.update({(dose, record.split): record for record in records})
    return scans


def run_views(
    config: StudyConfig,
    layout: RunLayout,
    ledger: StudyLedger,
    scans: dict[tuple[float, str], ScanRecord],
    *,
    fresh: bool,
) -> dict[Condition, ViewRecord]:
    """Phase D mapped over dose x view x split."""
    select = for_run(select_view, layout.cache_dir, fresh=fresh)
    futures = {
        condition: select.submit(
            scans[(condition.dose, condition.split)],
            condition.view,
            config.views.overlaps[condition.view],
            config.views,
            config.seeds,
            str(layout.root),
        )
        for condition in ledger.conditions
        if ledger.alive(condition)
    }
    return collect(
        "views", futures.items(), len(futures), ledger, lambda condition, error: ledger.fail(condition, "views", error)
    )


def run_training(
    config: StudyConfig,
    layout: RunLayout,
    ledger: StudyLedger,
    views: dict[Condition, ViewRecord],
    *,
    fresh: bool,
) -> dict[tuple[float, str, str], ModelRecord]:
    """Phase E training, dose x view x arm, one network at a time (each uses every core).

    A failed arm fails both splits of its dose and view.
    """
    train = for_run(train_arm, layout.cache_dir, fresh=fresh)

    def fail_view(dose: float, view: str, phase: str, error: str) -> None:
        for condition in ledger.conditions:
            if (condition.dose, condition.view) == (dose, view):
                ledger.fail(condition, phase, error)

    jobs = []
    for condition in ledger.conditions:
        if condition.split != Split.TRAIN:
            continue
        view = views.get(condition)
        if view is None:
            fail_view(condition.dose, condition.view, "train", f"no training data: the {condition} condition failed")
            continue
        for arm in config.training.arms:
            seed = derived_seed(config.seeds.grouping, condition.dose, condition.view, arm)
            jobs.append(
                ((condition.dose, condition.view, str(arm)), (view, arm, config.training, seed, str(layout.root)))
            )
    submitted = ((key, train.submit(*arguments)) for key, arguments in jobs)
    return collect(
        "train", submitted, len(jobs), ledger, lambda key, error: fail_view(key[0], key[1], f"train {key[2]}", error)
    )


def run_inference(
    config: StudyConfig,
    layout: RunLayout,
    ledger: StudyLedger,
    views: dict[Condition, ViewRecord],
    models: dict[tuple[float, str, str], ModelRecord],
    *,
    fresh: bool,
) -> dict[tuple[Condition, str], ReconRecord]:
    """Phase E inference, every condition x network arm, stitched on the truth's canvas."""
    infer = for_run(infer_arm, layout.cache_dir, fresh=fresh)
    jobs = [
        ((condition, str(arm)), (models[(condition.dose, condition.view, str(arm))], view))
        for condition, view in views.items()
        for arm in config.training.arms
        if (condition.dose, condition.view, str(arm)) in models
    ]
    submitted = (
        (key, infer.submit(model, view, config.training.inference_batch_size, str(layout.root)))
        for key, (model, view) in jobs
    )
    return collect(
        "infer", submitted, len(jobs), ledger, lambda key, error: ledger.fail(key[0], f"infer {key[1]}", error)
    )


def run_lsqml(
    config: StudyConfig,
    layout: RunLayout,
    ledger: StudyLedger,
    views: dict[Condition, ViewRecord],
    *,
    fresh: bool,
) -> dict[tuple[Condition, str], ReconRecord]:
    """Phase F: pty-chi LSQML on every view split, one run at a time in the worker process."""
    reconstruct = for_run(reconstruct_lsqml, layout.cache_dir, fresh=fresh)
    jobs = list(views.items())
    submitted = (
        (
            (condition, "lsqml"),
            reconstruct.submit(
                view,
                config.lsqml,
                derived_seed(config.seeds.simulation, condition.dose, condition.view, condition.split, "lsqml"),
                str(layout.root),
            ),
        )
        for condition, view in jobs
    )
    return collect("lsqml", submitted, len(jobs), ledger, lambda key, error: ledger.fail(key[0], "lsqml", error))


def run_compare(
    config: StudyConfig,
    layout: RunLayout,
    ledger: StudyLedger,
    views: dict[Condition, ViewRecord],
    recons: dict[tuple[Condition, str], ReconRecord],
    *,
    fresh: bool,
) -> dict[Condition, CompareRecord]:
    """Phase G: align and score every arm present for each condition, all conditions at once.

    A condition one of whose arms failed is still scored on the others (and stays failed).
    """
    score = for_run(compare_condition, layout.cache_dir, fresh=fresh)
    futures = {}
    for condition, view in views.items():
        present = [record for (key, _), record in recons.items() if key == condition]
        if not present:
            ledger.fail(condition, "compare", "no reconstruction to score: every arm failed")
            continue
        futures[condition] = score.submit(view, present, config.evaluation, str(layout.root))

    compared = collect(
        "compare", futures.items(), len(futures), ledger, lambda key, error: ledger.fail(key, "compare", error)
    )
    for condition in compared:
        ledger.complete(condition)
    return compared


def collect(
    phase: str,
    submitted: Iterable[tuple[Any, PrefectFuture[Any]]],
    total: int,
    ledger: StudyLedger,
    on_failure: Callable[[Any, str], None],
) -> dict[Any, Any]:
    """Wait for a phase's ``(key, future)`` pairs in turn; return the results of those that succeeded.

    Each failure goes to ``on_failure(key, reason)``; progress is logged as each finishes.
    Pass a lazy generator to run the tasks one at a time (each is submitted only after
    the previous one finished), or already submitted futures to run them concurrently.
    """
    logger = get_run_logger()
    results: dict[Any, Any] = {}
    for done, (key, future) in enumerate(submitted, start=1):
        future.wait()
        state = future.state
        ok = state.is_completed()
        ledger.record_task(phase, ok=ok, cached=state.name == "Cached")
        if ok:
            results[key] = state.result()
        else:
            on_failure(key, describe(state.result(raise_on_failure=False)))
        logger.info("phase %s: %d/%d done%s", phase, done, total, "" if ok else f" ({key} failed)")
    return results


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def publish(
    config: StudyConfig,
    layout: RunLayout,
    summary: dict[str, Any],
    records: list[Any],
    compared: list[CompareRecord],
) -> None:
    """Write the report (metrics.csv, figures), summary.json/.md and manifest.json; publish the
    Prefect artifacts: the summary (markdown), the scores and the task tally (tables), the figures (links)."""
    title = f"Dose x overlap study ({config.profile} profile)"
    report = build_report(compared, str(layout.report_dir))
    summary = {**summary, "report": report["files"]}
    markdown = summary_markdown(summary, title=title) + "\n" + report["markdown"]
    write_json(layout.report_dir / "summary.json", summary)
    write_text(layout.report_dir / "summary.md", markdown)
    write_json(layout.manifest, build_manifest(config, records))
    create_markdown_artifact(key="study-summary", markdown=markdown, description=title)
    create_table_artifact(
        key="study-metrics",
        table=report["scores"],
        description="Headline scores per condition and arm, after alignment (report/metrics.csv has all)",
    )
    create_table_artifact(
        key="study-tasks",
        table=[{"phase": name, **tally} for name, tally in summary["phases"].items()],
        description="Tasks per phase: succeeded (of which cached) and failed",
    )
    for name, path in report["files"].items():
        if path.endswith(".png"):
            create_link_artifact(
                key=f"study-{name.replace('_', '-')}",
                link=Path(path).as_uri(),
                link_text=f"{Path(path).name} ({title})",
                description=f"Study figure {name}",
            )


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Run the dose x overlap ptychography study.")
    parser.add_argument("--profile", default="quick", choices=["smoke", "quick", "paper"])
    parser.add_argument("--config", dest="config_file", help="YAML file overriding the profile")
    parser.add_argument("--out", help="run directory (default runs/<profile>)")
    parser.add_argument("--fresh", action="store_true", help="ignore cached results and recompute")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one field, e.g. --set scan.doses=[1000,100000]",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    try:
        overrides = dict(parse_override(text) for text in args.overrides)
        check_plan(resolve_config(args.profile, config_file=args.config_file, overrides=overrides))
    except (ConfigError, InfeasibleViewError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = str(Path(args.out or f"runs/{args.profile}").resolve())
    state = study(
        profile=args.profile,
        config_file=args.config_file,
        out=out,
        fresh=args.fresh,
        overrides=overrides,
        return_state=True,
    )
    summary_path = RunLayout(Path(out)).report_dir / "summary.json"
    if not summary_path.is_file():
        print(f"error: the study stopped before publishing: {state.message}", file=sys.stderr)
        return 1
    summary = json.loads(summary_path.read_text())
    print(format_counts(summary, out))
    return 0 if state.is_completed() and summary["n_failed"] == 0 else 1


def format_counts(summary: dict[str, Any], out: str) -> str:
    lines = [
        f"study finished: {summary['n_conditions']} conditions, {summary['n_executed']} executed, "
        f"{summary['n_success']} succeeded, {summary['n_failed']} failed",
    ]
    lines += [
        f"  failed: dose {f['dose']:g} {f['view']} {f['split']} in {f['phase']}: {f['error']}"
        for f in summary["failures"]
    ]
    lines.append(f"results: {out}")
    return "\n".join(lines)


if __name__ == "__main__":
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    sys.exit(main())
