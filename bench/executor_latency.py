"""Executor latency and throughput, side by side with the bare ``papermill`` command-line tool.

1. A two-cell notebook submitted through the HTTP API (``POST /execute-notebook``, which answers when
   the run has ended) against ``papermill in.ipynb out.ipynb`` run as a command on the same notebook.
   Target: API p50 <= 0.25x the command's median wall time (the command pays for an interpreter and a
   kernel start on every run; the executor's kernels are started ahead, one fresh kernel per run).
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
from pathlib import Path

import httpx
import nbformat
from nbp_common import migrations
from nbp_common.testing import ServiceProcess, start_service
from nbp_platform import SERVICES

from bench._support import embedded_postgres

RUNS = int(os.environ.get("NBP_BENCH_RUNS", "20"))
CLI_RUNS = int(os.environ.get("NBP_BENCH_CLI_RUNS", "5"))
GAP = float(os.environ.get("NBP_BENCH_GAP", "2"))
SLEEP_RUNS = int(os.environ.get("NBP_BENCH_SLEEP_RUNS", "3"))
BURST = int(os.environ.get("NBP_BENCH_BURST", "40"))
USER = "bench"


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


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="nbp-bench-executor-"))
    workspace = work / "workspace"
    two_cell = write(workspace / USER / "two_cell.ipynb", "x = 1", "y = x + 1")
    write(workspace / USER / "sleep10.ipynb", "import time\ntime.sleep(10)")
    write(workspace / USER / "trivial.ipynb", "x = 1")
    logs = work / "logs"
    logs.mkdir()
    services: list[ServiceProcess] = []
    with embedded_postgres("bench_executor") as url:
        for spec in SERVICES:
            migrations.upgrade(spec.migrations, url)
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
                **quiet,
            )
            services.append(executor)
            with httpx.Client(base_url=executor.url, timeout=300) as client:
                for _ in range(2):  # warm-up: imports, connections, first kernels
                    run_api(client, "two_cell.ipynb")
                    time.sleep(GAP)
                api = []
                for _ in range(RUNS):
                    api.append(run_api(client, "two_cell.ipynb"))
                    time.sleep(GAP)
                cli = [run_cli(two_cell, work / f"cli-{i}.ipynb") for i in range(CLI_RUNS)]
                sleeps = []
                for _ in range(SLEEP_RUNS):
                    time.sleep(GAP)
                    sleeps.append(run_api(client, "sleep10.ipynb"))
                time.sleep(GAP * 2)
                rate = burst(client, "trivial.ipynb", BURST)
        finally:
            for service in reversed(services):
                service.stop()

    api_p50, api_p95 = percentile(api, 0.5), percentile(api, 0.95)
    cli_median = statistics.median(cli)
    ratio = api_p50 / cli_median
    sleep_wall = statistics.median(sleeps)
    overhead = (sleep_wall - 10) / 10
    print(f"two-cell notebook: {RUNS} API runs ({GAP:g} s apart), {CLI_RUNS} papermill command runs")
    print(f"  API submit->completed   p50 {api_p50 * 1000:7.0f} ms   p95 {api_p95 * 1000:7.0f} ms")
    print(f"  papermill command       median {cli_median * 1000:7.0f} ms")
    print(
        f"  -> API p50 / command median: {ratio:.3f}x (target <= 0.25x) {'ok' if ratio <= 0.25 else 'MISSED'}"
    )
    print(f"sleep(10) notebook: median wall {sleep_wall:.3f} s over {SLEEP_RUNS} runs")
    print(f"  -> overhead {overhead * 100:.2f}% (target <= 3%) {'ok' if overhead <= 0.03 else 'MISSED'}")
    print(f"trivial runs, 2 workers, {BURST} queued at once: {rate:.1f} runs/minute")
    met = ratio <= 0.25 and overhead <= 0.03
    print("target met" if met else "TARGET NOT MET")


if __name__ == "__main__":
    main()
