"""The study's phases as the flow schedules them: each submits its tasks for every condition
it needs (phase C per dose, D per dose x view x split, E per network arm, F per view, G per
condition) and records every failure against the conditions it touches."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from flows._lanes import Job
from flows._scheduling import HeavyPhase, StudyRun, collect, run_heavy

from prefect.futures import PrefectFuture

from ptystudy.conditions import Condition, Split
from ptystudy.files import sha256_file
from ptystudy.machine import CONCURRENT_TRAININGS
from ptystudy.records import CompareRecord, FileRecord, ModelRecord, ReconRecord, ScanRecord, ViewRecord
from ptystudy.scan.hdf5 import companion_files
from ptystudy.scan.simulate import ScanPlanConfig
from ptystudy.seeds import derived_seed
from tasks._prefect import submit_under_limits
from tasks.compare import compare_condition
from tasks.infer import infer_arm
from tasks.reconstruct import reconstruct_lsqml
from tasks.simulate import import_scans, simulate_scan
from tasks.train import train_arm
from tasks.views import select_view


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
            {
                **{split: FileRecord.of(Path(name)) for split, name in files.model_dump().items()},
                **{  # a product.h5's patterns are in its diffraction.h5: both in the key
                    f"{split} {path.name}": FileRecord.of(path)
                    for split, name in files.model_dump().items()
                    for path in companion_files(Path(name))
                },
            },
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
            arguments = (view, arm, config.training.for_arm(arm), seed, run.run_dir)
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


def run_replicate(run: StudyRun) -> tuple[list[Any], list[CompareRecord]]:
    """Phases C to G for one replicate; returns every record it made and the scored conditions'."""
    scans = run_simulation(run)
    views = run_views(run, scans)
    models, recons = run_reconstruction(run, views)
    compared = run_compare(run, views, recons)
    records = [*scans.values(), *views.values(), *models.values(), *recons.values(), *compared.values()]
    return records, list(compared.values())
