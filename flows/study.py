"""The dose x overlap ptychography study flow: the phase table, one replicate after another.

    python flows/study.py [--profile smoke|quick|paper] [--config FILE.yaml] [--out DIR]
                          [--fresh] [--set section.field=value ...] [--dask [ADDRESS]]

Exit status: 0 when every condition succeeded, 2 for bad input or a refused run directory
(before any work), 1 when the study failed while working.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from flows._phases import run_replicate
from flows._progress import StudyProgress
from flows._runners import LOCAL, describe_task_runner, task_runner
from flows._scheduling import StudyRun
from flows._watchdog import watch_descendants

from prefect import flow, get_run_logger
from prefect.states import Completed, State
from pydantic import Field

from ptystudy.conditions import Condition, Selection, Split, conditions, needed_conditions, selected_conditions
from ptystudy.config import Arm, ConfigError, Profile, StudyConfig
from ptystudy.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, ContractError, InfeasibleViewError
from ptystudy.naming import dose_text
from ptystudy.profiles import add_override_option, parse_override, resolve_config
from ptystudy.records import ScanRecord
from ptystudy.run.layout import RunLayout
from ptystudy.run.ledger import StudyLedger, combined_summary, outcome_text
from ptystudy.run.lock import RunDirectoryError, RunLock, record_complete_study
from ptystudy.scan.plan import check_plan
from tasks._prefect import for_run
from tasks.publish import publish_study
from tasks.report import build_report

OVERRIDES_EXAMPLE = {"scan.doses": [1000, 100000], "training.max_epochs": 20}
SELECT_EXAMPLE = {"doses": [1000], "views": ["dense"], "splits": ["test"]}
BAD_INPUT = (ConfigError, ContractError, InfeasibleViewError, RunDirectoryError, ValueError)
"""What a study refuses before any work (exit 2)."""


class StudyFailed(RuntimeError):
    """Raised after publishing, when at least one condition failed; carries the published summary."""

    def __init__(self, message: str, summary: dict[str, Any]):
        super().__init__(message, summary)
        self.summary = summary

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class StudyPlan:
    """A checked plan: the configuration, the selected conditions and where the run goes."""

    config: StudyConfig
    selection: Selection
    selected: list[Condition]
    layout: RunLayout
    description: str
    """The plan's feasibility summary (probe footprint, scans per dose)."""


def plan_study(
    profile: Profile | str,
    config_file: str | None,
    overrides: dict[str, Any] | None,
    select: dict[str, list[Any]] | None,
    replicates: int | None,
    out: str | None,
) -> StudyPlan:
    """Resolve and check everything a study needs before any work (raises one of ``BAD_INPUT``)."""
    if replicates is not None:
        overrides = {**(overrides or {}), "replicates": replicates}
    config = resolve_config(profile, config_file=config_file, overrides=overrides)
    selection = Selection(**(select or {}))
    selected = selected_conditions(config, selection)
    layout = RunLayout(Path(out or f"runs/{config.profile}").resolve())
    return StudyPlan(config, selection, selected, layout, check_plan(config))


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
        profile: Study size: smoke (tests, about 3 minutes on 2 CPU cores), quick (a laptop,
            9 to 15 minutes on 2 cores), paper (a GPU machine) or map (the quick sizes
            over doses 1e1-1e5 and overlaps f = 0-0.7, three replicates).
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
    plan = plan_study(profile, config_file, overrides, select, replicates, out)
    config, layout, logger = plan.config, plan.layout, get_run_logger()
    logger.info(
        "%s profile: %d conditions (%s), %s, output in %s; tasks run on %s",
        config.profile,
        len(plan.selected),
        plan.selection.describe(),
        plan.description,
        layout.root,
        describe_task_runner(),
    )
    with RunLock(layout.root) as lock:
        started = time.time()
        log_takeover(lock, logger)
        needed = needed_conditions(config, plan.selected)
        progress = StudyProgress(config, plan.selected, needed)
        ledgers, records, scored, first = [], [], [], []
        for replicate in range(config.replicates):
            if config.replicates > 1:
                logger.info("replicate %d of %d", replicate + 1, config.replicates)
            progress.start_replicate(replicate)
            ledger = StudyLedger(plan.selected)
            seeds = config.seeds.for_replicate(replicate)
            run = StudyRun(
                config.model_copy(update={"seeds": seeds}), layout.replicate(replicate), ledger, progress, fresh, needed
            )
            made, compared = run_replicate(run)
            ledgers.append(ledger)
            records += made
            scored += [(replicate, record) for record in compared]
            first = made if replicate == 0 else first  # for the views and convergence tables
        summary = {**combined_summary(ledgers), "selection": plan.selection.describe()}
        progress.finish(outcome_text(summary))
        specimen = next((r for r in first if isinstance(r, ScanRecord) and r.split == Split.TRAIN), None)
        report = for_run(build_report, layout.cache_dir, fresh=fresh)(
            [record for _, record in scored],
            [replicate for replicate, _ in scored],
            specimen,
            dict(config.views.overlaps),
            str(layout.report_dir),
        )
        summary = publish_study(config, str(layout.root), summary, records, first, scored, report)
        if len(plan.selected) == len(conditions(config)):  # the whole matrix, however it was selected
            record_complete_study(layout.cache_dir, started)
    if summary["n_failed"]:
        raise StudyFailed(outcome_text(summary), summary)
    # the run's final state says the outcome in the UI; a Python caller gets the summary
    return Completed(message=outcome_text(summary), data=summary)  # type: ignore[return-value]


def log_takeover(lock: RunLock, logger: Any) -> None:
    """Say whose run directory a study took over and what unfinished files it removed."""
    if lock.taken_over:
        logger.warning(
            "taking the run directory over from a study that stopped without releasing it (%s)", lock.taken_over
        )
    if lock.leftovers:
        logger.warning("removed %d unfinished file(s) a stopped run left behind", len(lock.leftovers))


def main(argv: list[str] | None = None) -> int:
    """The command line: parse, check the plan and take the run directory (exit 2 on either),
    run the flow, print the counts."""
    args = get_parser().parse_args(argv)
    select = {
        key: values for key, values in (("doses", args.dose), ("views", args.view), ("splits", args.split)) if values
    }
    with ExitStack() as held:
        try:
            overrides = cli_overrides(args)
            plan = plan_study(args.profile, args.config_file, overrides, select, args.replicates, args.out)
            if args.dask and not os.environ.get("PREFECT_API_URL"):
                raise ValueError("--dask needs a Prefect server: start one and set PREFECT_API_URL (see README)")
            held.enter_context(RunLock(plan.layout.root))  # for the whole run; the flow finds it held
        except BAD_INPUT as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
        watch_descendants()  # the temporary Prefect server and workers die with this process
        runner = study.with_options(task_runner=task_runner(args.dask)) if args.dask else study
        state = runner(
            profile=args.profile,
            config_file=args.config_file,
            out=str(plan.layout.root),
            fresh=args.fresh,
            overrides=overrides,
            select=select or None,
            replicates=args.replicates,
            return_state=True,
        )
    summary = published_summary(state)
    if summary is None:
        print(f"error: the study stopped before publishing: {state.message}", file=sys.stderr)
        return EXIT_FAILED
    print(format_counts(summary, str(plan.layout.root)))
    return EXIT_OK if state.is_completed() and summary["n_failed"] == 0 else EXIT_FAILED


def cli_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The configuration overrides of a command line: each ``--set``, and ``--arm`` as
    ``training.arms`` (in the order given, repeats dropped)."""
    overrides = dict(parse_override(text) for text in args.overrides)
    if args.arm:
        overrides["training.arms"] = list(dict.fromkeys(args.arm))
    return overrides


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Run the dose x overlap ptychography study.")
    parser.add_argument("--profile", default="quick", choices=[str(profile) for profile in Profile])
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
        "--arm",
        action="append",
        choices=[str(arm) for arm in Arm if arm.is_network],
        help="train and score only this network arm (repeatable; LSQML, the reference, always runs)",
    )
    parser.add_argument(
        "--split", action="append", choices=[str(split) for split in Split], help="run only this split (repeatable)"
    )
    add_override_option(parser)
    return parser


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
        f"  failed: dose {dose_text(f['dose'])} {f['view']} {f['split']} in {f['phase']}: {f['error']}"
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
