"""Deploy the study to a running Prefect server: ``python deployments/deploy.py``.

What an operator runs once per server (and again after changing ``prefect.yaml``; every
step is idempotent):

1. wait until the server at ``PREFECT_API_URL`` answers ``/health``;
2. create the ``process`` work pool named in ``prefect.yaml`` if it does not exist;
3. optionally create the tag concurrency limit that caps GPU jobs (``--gpu-slots``);
4. ``prefect deploy --all`` from ``prefect.yaml``, with ``PTYSTUDY_ROOT`` set to this
   checkout so the pull step makes the entrypoint importable on the worker.

Then start a worker on the machine that runs the study:
``PTYSTUDY_ROOT=$PWD prefect worker start --pool ptystudy-process``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parents[1]
GPU_TAG = "gpu"


def api_url() -> str:
    url = os.environ.get("PREFECT_API_URL")
    if not url:
        raise SystemExit("error: set PREFECT_API_URL to the server's API, e.g. http://127.0.0.1:4200/api")
    return url.rstrip("/")


def wait_for_server(url: str, timeout_s: float) -> None:
    """Poll ``{url}/health`` until it answers 200, or exit after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"error: no Prefect server answered at {url} within {timeout_s:.0f} s")
        time.sleep(1)


def work_pools() -> set[str]:
    """The work pools ``prefect.yaml``'s deployments use."""
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    return {deployment["work_pool"]["name"] for deployment in spec["deployments"]}


def ensure_work_pool(url: str, name: str) -> bool:
    """Create a ``process`` work pool ``name`` (with the worker's default job template)
    unless it exists; True if created."""
    if httpx.get(f"{url}/work_pools/{name}", timeout=30).status_code == 200:
        return False
    prefect(url, "work-pool", "create", name, "--type", "process")
    return True


def ensure_tag_limit(url: str, tag: str, slots: int) -> None:
    """Set the task concurrency limit of ``tag`` to ``slots`` (create or update)."""
    response = httpx.post(f"{url}/concurrency_limits/", json={"tag": tag, "concurrency_limit": slots}, timeout=30)
    response.raise_for_status()


def prefect(url: str, *arguments: str) -> None:
    """Run the ``prefect`` command line against ``url`` from the repository root."""
    env = {**os.environ, "PREFECT_API_URL": url, "PTYSTUDY_ROOT": os.environ.get("PTYSTUDY_ROOT", str(REPO))}
    command = [sys.executable, "-m", "prefect", "--no-prompt", *arguments]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"error: prefect {' '.join(arguments)} failed:\n{result.stdout}\n{result.stderr}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create the work pool and deploy the study from prefect.yaml.")
    parser.add_argument("--wait", type=float, default=120, help="seconds to wait for the server (default 120)")
    parser.add_argument(
        "--gpu-slots",
        type=int,
        default=None,
        help=f"cap tasks tagged {GPU_TAG!r} (training, LSQML) at this many at once, e.g. 1 per GPU",
    )
    args = parser.parse_args(argv)
    url = api_url()
    wait_for_server(url, args.wait)
    for pool in sorted(work_pools()):
        created = ensure_work_pool(url, pool)
        print(f"work pool {pool}: {'created' if created else 'exists'}")
    if args.gpu_slots is not None:
        ensure_tag_limit(url, GPU_TAG, args.gpu_slots)
        print(f"tag {GPU_TAG!r}: at most {args.gpu_slots} task(s) at once")
    prefect(url, "deploy", "--all")
    print("deployed every deployment of prefect.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
