"""Executor latency and throughput per runner (``sandbox``, ``trusted``; ``kubernetes`` as its expected
cost, since no kubelet runs here), side by side with the bare ``papermill`` command-line tool, in one run.

1. A two-cell notebook submitted through the HTTP API (``POST /execute-notebook``, which answers when
   the run has ended) against ``papermill in.ipynb out.ipynb`` run as a command on the same notebook.
   Target: ``sandbox`` API p50 <= 0.10x the command's median wall time (the command pays for an
   interpreter and a kernel start on every run; the executor's kernels are forked ahead, one fresh
   kernel per run); moonshot: the sandbox adds <= 50 ms over ``trusted``. The user's sandbox is
   started by the warm-up runs (a user's first run pays for it; see the executor's README).
   Submissions are spaced by ``NBP_BENCH_GAP`` seconds (default 2) so that the warm pool refills, as
   it does at any arrival rate below the pool's refill rate; the back-to-back rate is figure 3.
2. A notebook that sleeps 10 s, through the API: overhead = (wall time - 10 s) / 10 s. Target <= 3%.
3. Trivial runs per minute with 2 workers: ``NBP_BENCH_BURST`` runs (default 40) queued at once,
   first submit to last completion.

Everything runs as the services run: registry, history and executor as processes over an embedded
PostgreSQL, the executor calling the other two over HTTP.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import nbformat
from nbp_common import migrations
from nbp_platform import SERVICES
from sqlalchemy.engine import URL

from bench._support import embedded_postgres
from tests.support.common import ServiceProcess, start_service

RUNS = int(os.environ.get("NBP_BENCH_RUNS", "20"))
RUNNERS = os.environ.get("NBP_BENCH_RUNNERS", "sandbox,trusted").split(",")
CLI_RUNS = int(os.environ.get("NBP_BENCH_CLI_RUNS", "5"))
GAP = float(os.environ.get("NBP_BENCH_GAP", "2"))
SLEEP_RUNS = int(os.environ.get("NBP_BENCH_SLEEP_RUNS", "3"))
BURST = int(os.environ.get("NBP_BENCH_BURST", "40"))
USER = "bench"
KUBERNETES_EXPECTED = (
    "not measurable here (no kubelet); expected 3-5 s per run on a node that has the image "
    "(a pod per run: scheduling, container start, interpreter and kernel start; see the executor README)"
)


def write(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def run_api(client: httpx.Client, notebook: str) -> float:
    started = time.perf_counter()
    response = client.post("/execute-notebook", json={"username": USER, "notebook_path": notebook})
    elapsed = time.perf_counter() - started
    body = response.json()
    if response.status_code != 200 or body.get("status") != "completed":
        raise SystemExit(f"run failed: {response.status_code} {body}")
    return elapsed


def run_cli(notebook: Path, output: Path) -> float:
    papermill = Path(sys.executable).with_name("papermill")
    started = time.perf_counter()
    subprocess.run(
        [str(papermill), str(notebook), str(output), "--kernel", "python3", "--no-progress-bar"],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def burst(client: httpx.Client, notebook: str, count: int) -> float:
    """Runs per minute: ``count`` runs queued at once, first submit to last completion."""
    started = time.perf_counter()
    ids = []
    for _ in range(count):
        response = client.post("/executions", json={"username": USER, "notebook_path": notebook})
        response.raise_for_status()
        ids.append(response.json()["id"])
    pending = set(ids)
    while pending:
        for run_id in list(pending):
            status = client.get(f"/executions/{run_id}").json()["status"]
            if status not in ("queued", "running"):
                if status != "completed":
                    raise SystemExit(f"run {run_id} ended {status}")
                pending.discard(run_id)
        time.sleep(0.2)
    return count / (time.perf_counter() - started) * 60


@dataclass
class Figures:
    api: list[float]
    sleeps: list[float]
    rate: float


def measure(runner: str, url: URL, workspace: Path, logs: Path) -> Figures:
    services: list[ServiceProcess] = []
    try:
        quiet = {"NBP_LOG_LEVEL": "WARNING", "NBP_LOG_JSON": "false"}
        registry = start_service("registry", url, logs, **quiet)
        history = start_service("history", url, logs, **quiet)
        services += [registry, history]
        executor = start_service(
            "executor",
            url,
            logs,
            NBP_WORKSPACE=str(workspace),
            NBP_REGISTRY_URL=registry.url,
            NBP_HISTORY_URL=history.url,
            NBP_EXECUTOR_WORKERS="2",
            NBP_EXECUTOR_RUNNER=runner,
            **quiet,
        )
        services.append(executor)
        with httpx.Client(base_url=executor.url, timeout=300) as client:
            for _ in range(2):  # warm-up: imports, connections, the user's sandbox, first kernels
                run_api(client, "two_cell.ipynb")
                time.sleep(GAP)
            api = []
            for _ in range(RUNS):
                api.append(run_api(client, "two_cell.ipynb"))
                time.sleep(GAP)
            sleeps = []
            for _ in range(SLEEP_RUNS):
                time.sleep(GAP)
                sleeps.append(run_api(client, "sleep10.ipynb"))
            time.sleep(GAP * 2)
            rate = burst(client, "trivial.ipynb", BURST)
    finally:
        for service in reversed(services):
            service.stop()
    return Figures(api, sleeps, rate)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="nbp-bench-executor-"))
    workspace = work / "workspace"
    two_cell = write(workspace / USER / "two_cell.ipynb", "x = 1", "y = x + 1")
    write(workspace / USER / "sleep10.ipynb", "import time\ntime.sleep(10)")
    write(workspace / USER / "trivial.ipynb", "x = 1")
    logs = work / "logs"
    logs.mkdir()
    figures: dict[str, Figures] = {}
    with embedded_postgres("bench_executor") as url:
        for spec in SERVICES:
            migrations.upgrade(spec.migrations, url)
        for runner in RUNNERS:
            figures[runner] = measure(runner, url, workspace, logs)
    cli = [run_cli(two_cell, work / f"cli-{i}.ipynb") for i in range(CLI_RUNS)]
    cli_median = statistics.median(cli)

    print(
        f"load average at the end: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}"
    )
    print(
        f"two-cell notebook: {RUNS} API runs per runner ({GAP:g} s apart), {CLI_RUNS} papermill command runs"
    )
    print(f"  papermill command: median {cli_median * 1000:.0f} ms")
    header = f"  {'':32}" + "".join(f"{runner:>14}" for runner in figures)
    print(header)
    rows = {
        "API p50 (ms)": [percentile(f.api, 0.5) * 1000 for f in figures.values()],
        "API p95 (ms)": [percentile(f.api, 0.95) * 1000 for f in figures.values()],
        "p50 / papermill command": [percentile(f.api, 0.5) / cli_median for f in figures.values()],
        "sleep(10) overhead (%)": [(statistics.median(f.sleeps) - 10) * 10 for f in figures.values()],
        f"runs/minute, {BURST} queued, 2 workers": [f.rate for f in figures.values()],
    }
    for name, values in rows.items():
        print(
            f"  {name:32}" + "".join(f"{value:14.3f}" if value < 10 else f"{value:14.0f}" for value in values)
        )
    # No kubelet here: a pod per run cannot be timed on this machine (its lifecycle tests use a stand-in).
    print(f"  {'kubernetes':32}  {KUBERNETES_EXPECTED}")
    met = True
    if "sandbox" in figures:
        ratio = percentile(figures["sandbox"].api, 0.5) / cli_median
        met = ratio <= 0.10
        print(f"  -> sandbox p50 / command: {ratio:.3f}x (target <= 0.10x) {'ok' if met else 'MISSED'}")
        if "trusted" in figures:
            added = (percentile(figures["sandbox"].api, 0.5) - percentile(figures["trusted"].api, 0.5)) * 1000
            print(f"  -> the sandbox adds {added:.0f} ms at p50 over trusted (moonshot <= 50 ms)")
    print("target met" if met else "TARGET NOT MET")


if __name__ == "__main__":
    main()
