"""The dose x overlap ptychography study flow (DESIGN §1, §9, §10).

    python flows/study.py [--profile smoke|quick|paper] [--config FILE.yaml] [--out DIR]
                          [--fresh] [--set section.field=value ...] [--dask [ADDRESS]]

Exit status 0 only when every condition succeeded.
"""

from __future__ import annotations

from flows._environment import configure_prefect_environment

configure_prefect_environment()

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from contextlib import ExitStack  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from functools import cached_property, partial  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Annotated, Any  # noqa: E402

import pandas as pd  # noqa: E402
from prefect import Task, flow, get_run_logger  # noqa: E402
from prefect.futures import PrefectFuture  # noqa: E402
from prefect.states import Completed, State  # noqa: E402
from pydantic import Field  # noqa: E402

from flows._artifacts import publish_artifacts  # noqa: E402
from flows._lanes import Job, run_lanes  # noqa: E402
from flows._progress import StudyProgress  # noqa: E402
from flows._runners import LOCAL, describe_task_runner, runs_in_parallel, task_runner  # noqa: E402
from flows._watchdog import watch_descendants  # noqa: E402
from ptystudy.conditions import (  # noqa: E402
    Condition,
    Selection,
    Split,
    dose_text,
    needed_conditions,
    selected_conditions,
)
from ptystudy.config import (  # noqa: E402
    ConfigError,
    Profile,
    StudyConfig,
    add_override_option,
    parse_override,
    resolve_config,
)
from ptystudy.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, ContractError, InfeasibleViewError  # noqa: E402
from ptystudy.files import sha256_file, write_json, write_text  # noqa: E402
from ptystudy.html_report import ConditionSection, write_html_report  # noqa: E402
from ptystudy.layout import RunLayout  # noqa: E402
from ptystudy.ledger import (  # noqa: E402
    StudyLedger,
    combined_summary,
    convergence_markdown,
    outcome_text,
    summary_markdown,
    views_frame,
    views_markdown,
)
from ptystudy.machine import CONCURRENT_TRAININGS  # noqa: E402
from ptystudy.manifest import build_manifest  # noqa: E402
from ptystudy.plan import check_plan  # noqa: E402
from ptystudy.records import CompareRecord, FileRecord, ModelRecord, ReconRecord, ScanRecord, ViewRecord  # noqa: E402
from ptystudy.report import comparison_title, display_table  # noqa: E402
from ptystudy.rundir import RunDirectoryError, RunLock, record_complete_study  # noqa: E402
from ptystudy.seeds import derived_seed  # noqa: E402
from ptystudy.simulate import ScanPlanConfig  # noqa: E402
from tasks._prefect import for_run, submit_under_limits  # noqa: E402
from tasks.compare import compare_condition  # noqa: E402
from tasks.infer import infer_arm  # noqa: E402
from tasks.reconstruct import reconstruct_lsqml  # noqa: E402
from tasks.report import build_report  # noqa: E402
from tasks.simulate import import_scans, simulate_scan  # noqa: E402
from tasks.train import train_arm  # noqa: E402
from tasks.views import select_view  # noqa: E402


class StudyFailed(RuntimeError):
    """Raised after publishing, when at least one condition failed; carries the published summary."""

    def __init__(self, message: str, summary: dict[str, Any]):
        super().__init__(message, summary)
        self.summary = summary

    def __str__(self) -> str:
        return str(self.args[0])


OVERRIDES_EXAMPLE = {"scan.doses": [1000, 100000], "training.max_epochs": 20}
SELECT_EXAMPLE = {"doses": [1000], "views": ["dense"], "splits": ["test"]}


@flow(name="dose-overlap-study", task_runner=task_runner())
def study(
    profile: Profile = Profile.QUICK,
    config_file: str | None = None,
    out: str | None = None,
    fresh: bool = False,
    overrides: Annotated[dict[str, Any] | None, Field(examples=[OVERRIDES_EXAMPLE])] = None,
    select: Annotated[dict[str, list[Any]] | None, Field(examples=[SELECT_EXAMPLE])] = None,
    replicates: int | None = None,
) -> dict[str, Any]:
    """Run the dose x overlap study (phases C-G) and publish its report.

    Every selected dose x view x split is simulated (or read from ``scan.files``), laid out,
    reconstructed by every arm and scored, in every replicate; then the report, its figures
    and the artifacts are published. The run fails, after publishing, when a selected
    condition failed in any phase or replicate; its final state message gives the counts.
    (Prefect shows the parameter descriptions below in the deployment's run form.)

    Args:
        profile: Study size: smoke (tests, about 2 minutes on 2 CPU cores), quick (a laptop,
            about 10 minutes on 2 cores) or paper (a GPU machine).
        config_file: Path of a YAML file whose fields override the profile's, on the machine
            that runs the flow. None: the profile alone.
        out: Run directory for results, report and cache. None: the folder runs/ and the
            profile's name (runs/quick, ...) in the working directory of the process that runs
            the flow (the worker's, for a deployment).
            A rerun into the same directory reuses every cached result.
        fresh: Recompute every phase and the report, ignoring the cached results in the run
            directory.
        overrides: Fields to change, as {"section.field": value} applied after the profile
            and config_file, e.g. {"scan.doses": [1000, 100000], "training.max_epochs": 20}.
            None: no change.
        select: Run only part of the matrix, e.g. {"doses": [1000], "views": ["dense"],
            "splits": ["test"]} (each key optional, each a list). Only what those conditions
            need is computed, in the same run directory and cache. None: every condition.
        replicates: Repeats of every condition with redrawn photon noise, scans, corpora and
            network initialisations. None: the profile's (1 for smoke and quick, 3 for paper).

    Returns:
        The study's summary: counts, failures and the report's files.
    """
    if replicates is not None:
        overrides = {**(overrides or {}), "replicates": replicates}
    config = resolve_config(profile, config_file=config_file, overrides=overrides)
    selection = Selection(**(select or {}))
    selected = selected_conditions(config, selection)
    layout = RunLayout(Path(out or f"runs/{config.profile}").resolve())
    logger = get_run_logger()
    plan = check_plan(config)
    logger.info(
        "%s profile: %d conditions (%s), %s, output in %s; tasks run on %s",
        config.profile,
        len(selected),
        selection.describe(),
        plan,
        layout.root,
        describe_task_runner(),
    )
    with RunLock(layout.root) as lock:
        started = time.time()
        if lock.taken_over:
            logger.warning("taking the run directory over from a study that stopped without releasing it (%s)",
                           lock.taken_over)
        if lock.leftovers:
            logger.warning("removed %d unfinished file(s) a stopped run left behind", len(lock.leftovers))
        needed = needed_conditions(config, selected)
        progress = StudyProgress(config, selected, needed)
        ledgers, records, scored, first = [], [], [], []
        for replicate in range(config.replicates):
            if config.replicates > 1:
                logger.info("replicate %d of %d", replicate + 1, config.replicates)
            progress.start_replicate(replicate)
            replicate_config = config.model_copy(update={"seeds": config.seeds.for_replicate(replicate)})
            ledger = StudyLedger(selected)
            run = StudyRun(replicate_config, layout.replicate(replicate), ledger, progress, fresh, needed)
            scans = run_simulation(run)
            views = run_views(run, scans)
            models, recons = run_reconstruction(run, views)
            compared = run_compare(run, views, recons)
            ledgers.append(ledger)
            records += [*scans.values(), *views.values(), *models.values(), *recons.values(), *compared.values()]
            scored += [(replicate, record) for record in compared.values()]
            if replicate == 0:
                first = records.copy()  # for the views and convergence tables
        summary = {**combined_summary(ledgers), "selection": selection.describe()}
        outcome = outcome_text(summary)
        progress.finish(outcome)
        publish(config, layout, summary, records, first, scored, fresh)
        if selection.describe() == "all conditions":
            record_complete_study(layout.cache_dir, started)
    if summary["n_failed"]:
        raise StudyFailed(outcome, summary)
    # the run's final state says the outcome in the UI; a Python caller gets the summary
    return Completed(message=outcome, data=summary)  # type: ignore[return-value]


@dataclass
class StudyRun:
    """One run of the study: its plan, run directory, outcome ledger and progress."""

    config: StudyConfig
    layout: RunLayout
    ledger: StudyLedger
    progress: StudyProgress
    fresh: bool
    needed: list[Condition]
    """The selected conditions and the train-split conditions whose views train their networks."""

    def phase(self, task: Task[..., Any]) -> Task[..., Any]:
        """``task`` with this run's result storage (its cache) and ``--fresh`` setting."""
        return for_run(task, self.layout.cache_dir, fresh=self.fresh)

    @property
    def run_dir(self) -> str:
        return str(self.layout.root)

    @cached_property
    def needed_doses(self) -> set[float]:
        return {condition.dose for condition in self.needed}

    def selected(self, condition: Condition) -> bool:
        return condition in self.ledger.conditions

    def fail_where(self, phase: str, error: str, **match: Any) -> None:
        """Fail every condition whose fields equal ``match`` (e.g. ``dose=1e3``)."""
        for condition in self.ledger.conditions:
            if all(getattr(condition, name) == value for name, value in match.items()):
                self.ledger.fail(condition, phase, error)


def run_simulation(run: StudyRun) -> dict[tuple[float, str], ScanRecord]:
    """Phase C mapped over doses (simulated, or read from ``scan.files``); a failed dose
    fails all its conditions."""
    config = run.config
    if config.scan.files:
        phase, futures = "import", import_jobs(run)
    else:
        phase, futures = "simulate", simulation_jobs(run)
    scans: dict[tuple[float, str], ScanRecord] = {}
    finished = collect(
        run, phase, futures.items(), len(futures), lambda dose, error: run.fail_where(phase, error, dose=dose)
    )
    for dose, records in finished.items():
        scans.update({(dose, record.split): record for record in records})
    return scans


def simulation_jobs(run: StudyRun) -> dict[float, PrefectFuture[Any]]:
    config = run.config
    simulate = run.phase(simulate_scan)
    object_file = config.scan.object_file
    object_sha256 = sha256_file(Path(object_file)) if object_file else None
    # each task sees only its own dose, so changing the others keeps its cache
    return {
        float(dose): simulate.submit(
            config.scan.model_copy(update={"doses": (float(dose),)}),
            ScanPlanConfig.of(config),
            config.seeds,
            float(dose),
            run.run_dir,
            object_sha256,
        )
        for dose in config.scan.doses
        if float(dose) in run.needed_doses
    }


def import_jobs(run: StudyRun) -> dict[float, PrefectFuture[Any]]:
    """One import task per dose; its key holds the files' hashes, so a changed file recomputes."""
    config = run.config
    read = run.phase(import_scans)
    return {
        float(dose): read.submit(
            {split: FileRecord.of(Path(name)) for split, name in files.model_dump().items()},
            ScanPlanConfig.of(config),
            config.seeds,
            float(dose),
            config.scan.round_positions,
            run.run_dir,
        )
        for dose, files in sorted(config.scan.files.items())
        if float(dose) in run.needed_doses
    }


def run_views(run: StudyRun, scans: dict[tuple[float, str], ScanRecord]) -> dict[Condition, ViewRecord]:
    """Phase D mapped over dose x view x split."""
    config = run.config
    select = run.phase(select_view)
    futures = {
        condition: select.submit(
            scans[(condition.dose, condition.split)],
            condition.view,
            config.views.overlaps[condition.view],
            config.views,
            config.seeds,
            run.run_dir,
        )
        for condition in run.needed
        if run.ledger.alive(condition)
    }
    # a train view outside the selection fails the selected conditions through their training
    return collect(
        run,
        "views",
        futures.items(),
        len(futures),
        lambda key, error: run.ledger.fail(key, "views", error) if run.selected(key) else None,
    )


@dataclass
class HeavyPhase:
    """A heavy phase's jobs, ``(key, submit)`` pairs, and what a failed job does to the ledger."""

    name: str
    jobs: list[Job]
    on_failure: Callable[[Any, str], None]
    width: int = 1
    """Tasks of this phase run at once on the thread runner."""


def run_heavy(run: StudyRun, *phases: HeavyPhase) -> dict[str, dict[Any, Any]]:
    """Run heavy phases together; return each phase's results by key.

    On Dask every job is submitted at once (a tag limit caps GPU jobs); with the thread
    runner each phase is a lane that runs ``width`` tasks at a time, the lanes side by side.
    """
    by_name = {phase.name: phase for phase in phases}
    if runs_in_parallel():
        finished: Iterable[tuple[str, Any, PrefectFuture[Any]]] = [
            (phase.name, key, submit()) for phase in phases for key, submit in phase.jobs
        ]
    else:
        finished = run_lanes(
            {phase.name: phase.jobs for phase in phases}, {phase.name: phase.width for phase in phases}
        )
    results: dict[str, dict[Any, Any]] = {name: {} for name in by_name}
    done = dict.fromkeys(by_name, 0)
    for name, key, future in finished:
        done[name] += 1
        phase = by_name[name]
        finish_task(run, name, key, future, (done[name], len(phase.jobs)), phase.on_failure, results[name])
    return results


def training_jobs(run: StudyRun, views: dict[Condition, ViewRecord]) -> HeavyPhase:
    """Phase E training, dose x view x arm. A failed arm fails both splits of its dose and view."""
    config = run.config
    train = run.phase(train_arm)
    jobs: list[Job] = []
    for condition in run.needed:
        if condition.split != Split.TRAIN:
            continue
        view = views.get(condition)
        if view is None:
            error = f"no training data: the {condition} condition failed"
            run.fail_where("train", error, dose=condition.dose, view=condition.view)
            continue
        for arm in config.training.arms:
            seed = derived_seed(config.seeds.grouping, condition.dose, condition.view, arm)
            arguments = (view, arm, config.training, seed, run.run_dir)
            jobs.append(((condition.dose, condition.view, str(arm)), partial(submit_under_limits, train, *arguments)))
    return HeavyPhase(
        "train",
        jobs,
        lambda key, error: run.fail_where(f"train {key[2]}", error, dose=key[0], view=key[1]),
        width=CONCURRENT_TRAININGS,
    )


def inference_jobs(
    run: StudyRun, views: dict[Condition, ViewRecord], models: dict[tuple[float, str, str], ModelRecord]
) -> HeavyPhase:
    """Phase E inference, every condition x network arm, stitched on the truth's canvas."""
    infer = run.phase(infer_arm)
    batch_size = run.config.training.inference_batch_size
    jobs: list[Job] = [
        (
            (condition, str(arm)),
            partial(infer.submit, models[(condition.dose, condition.view, str(arm))], view, batch_size, run.run_dir),
        )
        for condition, view in views.items()
        for arm in run.config.training.arms
        if run.selected(condition) and (condition.dose, condition.view, str(arm)) in models
    ]
    return HeavyPhase("infer", jobs, lambda key, error: run.ledger.fail(key[0], f"infer {key[1]}", error))


def lsqml_jobs(run: StudyRun, views: dict[Condition, ViewRecord]) -> HeavyPhase:
    """Phase F: pty-chi LSQML on every view split (in the LSQML worker process)."""
    config = run.config
    reconstruct = run.phase(reconstruct_lsqml)
    jobs: list[Job] = [
        (
            (condition, "lsqml"),
            partial(
                submit_under_limits,
                reconstruct,
                view,
                config.lsqml,
                derived_seed(config.seeds.simulation, condition.dose, condition.view, condition.split, "lsqml"),
                run.run_dir,
            ),
        )
        for condition, view in views.items()
        if run.selected(condition)
    ]
    return HeavyPhase("lsqml", jobs, lambda key, error: run.ledger.fail(key[0], "lsqml", error))


def run_reconstruction(
    run: StudyRun, views: dict[Condition, ViewRecord]
) -> tuple[dict[tuple[float, str, str], ModelRecord], dict[tuple[Condition, str], ReconRecord]]:
    """Phases E and F: train the networks while LSQML runs, then infer with each network.

    Returns the trained models and every reconstruction by ``(condition, arm)``.
    """
    first = run_heavy(run, training_jobs(run, views), lsqml_jobs(run, views))
    models = first["train"]
    inferred = run_heavy(run, inference_jobs(run, views, models))["infer"]
    return models, {**inferred, **first["lsqml"]}


def run_compare(
    run: StudyRun, views: dict[Condition, ViewRecord], recons: dict[tuple[Condition, str], ReconRecord]
) -> dict[Condition, CompareRecord]:
    """Phase G: align and score every arm present for each condition, all conditions at once.

    A condition one of whose arms failed is still scored on the others (and stays failed).
    """
    score = run.phase(compare_condition)
    futures = {}
    for condition, view in views.items():
        if not run.selected(condition):
            continue
        present = sorted((record for (key, _), record in recons.items() if key == condition), key=lambda r: r.arm)
        if not present:
            run.ledger.fail(condition, "compare", "no reconstruction to score: every arm failed")
            continue
        futures[condition] = score.submit(view, present, run.config.evaluation, run.run_dir)
    compared = collect(
        run, "compare", futures.items(), len(futures), lambda key, error: run.ledger.fail(key, "compare", error)
    )
    for condition in compared:
        run.ledger.complete(condition)
    return compared


def collect(
    run: StudyRun,
    phase: str,
    submitted: Iterable[tuple[Any, PrefectFuture[Any]]],
    total: int,
    on_failure: Callable[[Any, str], None],
) -> dict[Any, Any]:
    """Wait for a phase's submitted ``(key, future)`` pairs in turn; return the results of
    those that succeeded. Each failure goes to ``on_failure(key, reason)``."""
    results: dict[Any, Any] = {}
    for done, (key, future) in enumerate(submitted, start=1):
        finish_task(run, phase, key, future, (done, total), on_failure, results)
    return results


def finish_task(
    run: StudyRun,
    phase: str,
    key: Any,
    future: PrefectFuture[Any],
    count: tuple[int, int],
    on_failure: Callable[[Any, str], None],
    results: dict[Any, Any],
) -> None:
    """Wait for one task; put its result in ``results`` or report its failure; count it
    (``count``: this task's number in its phase and the phase's total) and show progress."""
    future.wait()
    state = future.state
    ok = state.is_completed()
    run.ledger.record_task(phase, ok=ok, cached=state.name == "Cached")
    if ok:
        results[key] = state.result()
    else:
        on_failure(key, describe(state.result(raise_on_failure=False)))
    run.progress.task_finished(phase, *count, "" if ok else f" ({key} failed)")


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def publish(
    config: StudyConfig,
    layout: RunLayout,
    summary: dict[str, Any],
    records: list[Any],
    first: list[Any],
    scored: list[tuple[int, CompareRecord]],
    fresh: bool = False,
) -> None:
    """Write the report (metrics.csv, figures, index.html), summary.json/.md and manifest.json;
    publish the Prefect artifacts (``flows._artifacts``): the summary with the scores-against-dose
    figure, the scores and the task tally (tables), every figure embedded, a link to index.html."""
    title = f"Dose x overlap study ({config.profile} profile)"
    report_task = for_run(build_report, layout.cache_dir, fresh=fresh)
    specimen = next((r for r in first if isinstance(r, ScanRecord) and r.split == Split.TRAIN), None)
    compared = [record for _, record in scored]
    replicates = [replicate for replicate, _ in scored]
    report = report_task(compared, replicates, specimen, str(layout.report_dir))
    views = [record for record in first if isinstance(record, ViewRecord)]
    models = [record for record in first if isinstance(record, ModelRecord)]
    recons = [record for record in first if isinstance(record, ReconRecord)]
    index = layout.report_dir / "index.html"
    summary = {**summary, "report": {**report["files"], "index": str(index)}}
    headline = display_table(pd.DataFrame(report["scores"]))
    paired = pd.read_csv(report["files"]["paired_comparisons"])
    figures = {name: Path(path) for name, path in report["files"].items() if path.endswith(".png")}
    write_html_report(
        index,
        title=title,
        summary=summary,
        settings=config.model_dump(mode="json"),
        views=views_frame(views, config.views.overlaps),
        headline=headline,
        paired=paired.assign(comparison=paired.comparison.map(comparison_title)),
        figures=figures,
        conditions=[
            ConditionSection(
                f"{dose_text(record.dose)} {record.view} {record.split}",
                Path(record.montage.path),
                Path(record.frc_figure.path),
            )
            for replicate, record in scored
            if replicate == 0
        ],
    )
    head = "\n".join(
        (
            f"Full report: [{index}]({index.as_uri()}) (one self-contained HTML file)\n",
            summary_markdown(summary, title=title),
        )
    )
    body = "\n".join(
        (report["markdown"], views_markdown(views, config.views.overlaps), convergence_markdown(models, recons))
    )
    write_json(layout.report_dir / "summary.json", summary)
    write_text(layout.report_dir / "summary.md", f"{head}\n{body}")
    write_json(layout.manifest, build_manifest(config, records))
    publish_artifacts(
        title=title,
        head=head,
        body=body,
        index=index,
        scores=headline,
        phases=summary["phases"],
        figures=figures,
    )


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Run the dose x overlap ptychography study.")
    parser.add_argument("--profile", default="quick", choices=["smoke", "quick", "paper"])
    parser.add_argument("--config", dest="config_file", help="YAML file overriding the profile")
    parser.add_argument("--out", help="run directory (default runs/<profile>)")
    parser.add_argument("--fresh", action="store_true", help="ignore cached results and recompute")
    parser.add_argument(
        "--dask",
        nargs="?",
        const=LOCAL,
        metavar="ADDRESS",
        help="run tasks on Dask: a local cluster, or the scheduler at ADDRESS (needs PREFECT_API_URL)",
    )
    parser.add_argument("--replicates", type=int, help="repeats of every condition (default: the profile's)")
    parser.add_argument("--dose", type=float, action="append", help="run only this dose (repeatable)")
    parser.add_argument("--view", action="append", help="run only this view (repeatable)")
    parser.add_argument(
        "--split", action="append", choices=[str(split) for split in Split], help="run only this split (repeatable)"
    )
    add_override_option(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command line: 0 when every condition succeeded, 2 for bad input or a refused run
    directory (before any work), 1 when the study failed while working."""
    args = get_parser().parse_args(argv)
    with ExitStack() as held:
        try:
            overrides = dict(parse_override(text) for text in args.overrides)
            if args.replicates is not None:
                overrides["replicates"] = args.replicates
            config = resolve_config(args.profile, config_file=args.config_file, overrides=overrides)
            select = {
                key: values
                for key, values in (("doses", args.dose), ("views", args.view), ("splits", args.split))
                if values
            }
            selected_conditions(config, Selection(**select))
            check_plan(config)
            out = Path(args.out or f"runs/{args.profile}").resolve()
            if args.dask and not os.environ.get("PREFECT_API_URL"):
                raise ValueError("--dask needs a Prefect server: start one and set PREFECT_API_URL (see README)")
            held.enter_context(RunLock(out))  # for the whole run; the flow finds it held by this process
        except (ConfigError, ContractError, InfeasibleViewError, RunDirectoryError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
        watch_descendants()  # the temporary Prefect server and workers die with this process
        runner = study.with_options(task_runner=task_runner(args.dask)) if args.dask else study
        state = runner(
            profile=args.profile,
            config_file=args.config_file,
            out=str(out),
            fresh=args.fresh,
            overrides=overrides,
            select=select or None,
            return_state=True,
        )
    summary = published_summary(state)
    if summary is None:
        print(f"error: the study stopped before publishing: {state.message}", file=sys.stderr)
        return EXIT_FAILED
    print(format_counts(summary, str(out)))
    return EXIT_OK if state.is_completed() and summary["n_failed"] == 0 else EXIT_FAILED


def published_summary(state: State[Any]) -> dict[str, Any] | None:
    """The summary this flow run published, from its final state: its result when every
    condition succeeded, carried by ``StudyFailed`` when some failed; None when the run
    stopped before publishing (a summary.json on disk may then be an earlier run's)."""
    if state.is_completed():
        return state.result()
    error = state.result(raise_on_failure=False)
    return error.summary if isinstance(error, StudyFailed) else None


def format_counts(summary: dict[str, Any], out: str) -> str:
    lines = [
        f"study finished: {summary['n_conditions']} conditions, {summary['n_executed']} executed, "
        f"{summary['n_success']} succeeded, {summary['n_failed']} failed",
    ]
    if summary.get("selection", "all conditions") != "all conditions":
        lines.append(f"  selected: {summary['selection']}")
    lines += [
        f"  failed: dose {f['dose']:g} {f['view']} {f['split']} in {f['phase']}: {f['error']}"
        for f in summary["failures"]
    ]
    lines.append(f"results: {out}")
    return "\n".join(lines)


if __name__ == "__main__":
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    # Run the importable module's flow, not this script's copy: Dask then pickles the
    # flow and its tasks by reference instead of by value.
    from flows.study import main as module_main

    sys.exit(module_main())
