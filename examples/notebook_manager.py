"""The prototype's example workflow (its ``example_notebook_manager.py``), on the nbp SDK.

    python examples/notebook_manager.py [--server URL] [--user NAME] [--path sales_analysis.ipynb]

Registers a notebook of the user's folder (put ``examples/sales_analysis.ipynb`` there first: in
JupyterHub, upload it to your home), defines its parameters with the prototype's type names, lists and
reads back what is registered, runs it with parameters, and reads the run's record and results from the
history. The server and token come from the arguments, NBP_URL / NBP_TOKEN, or ``nbp login``.
"""

from __future__ import annotations

import argparse
import json

from nbp import Client, NbpError
from nbp.client import Run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", help="the platform's URL (default: NBP_URL, or the last nbp login)")
    parser.add_argument("--user", help="whose folder the notebook is in (default: you)")
    parser.add_argument("--path", default="sales_analysis.ipynb", help="relative to that folder")
    args = parser.parse_args()

    with Client(args.server) as platform:
        user = args.user or platform.username()
        print(f"1. Health: {platform.health()['status']}")

        # 2. Register the notebook (the prototype sent its absolute path in the user's home).
        try:
            notebook = platform.register(
                f"/home/{user}/{args.path}",
                name="sales_analysis",
                username=user,
                description="Monthly sales analysis",
                tags=["sales", "monthly"],
                metadata={"author": user, "version": "1.0"},
            )
        except NbpError as exc:
            if exc.status != 409:
                raise
            notebook = next(n for n in platform.iter_notebooks(username=user, name="sales_analysis"))
            print("   (already registered)")
        print(f"2. Registered notebook {notebook['id']}: {notebook['file_path']}")

        # 3. Its parameters, by the prototype's type names (stored as ours).
        if not platform.parameters(notebook["id"]):
            platform.add_parameters(
                notebook["id"],
                [
                    {
                        "param_name": "region",
                        "param_type": "string",
                        "default_value": "north",
                        "description": "Sales region",
                        "required": 1,
                        "validation_rules": {"choices": ["north", "south", "east", "west"]},
                    },
                    {
                        "param_name": "month",
                        "param_type": "integer",
                        "default_value": 1,
                        "description": "Month number",
                        "validation_rules": {"min": 1, "max": 12},
                    },
                    {"param_name": "growth", "param_type": "float", "default_value": 0.05},
                ],
            )
        params = platform.parameters(notebook["id"])
        print(f"3. Parameters: {', '.join(p['param_name'] + ':' + p['param_type'] for p in params)}")

        # 4. What the user has registered, and the notebook with its parameters.
        names = [n["name"] for n in platform.iter_notebooks(username=user)]
        print(f"4. {user}'s notebooks: {names}")
        detail = platform.notebook(notebook["id"])
        print(f"   {detail['name']}: {len(detail['parameters'])} parameters")

        # 5. Run it with parameters (the registered defaults fill in the rest), following its progress.
        def progress(run: Run) -> None:
            bar = run["progress"]
            print(f"   run {run['id']} {run['status']}: {bar['cells_done']}/{bar['cells_total']} cells")

        run = platform.run(notebook["id"], parameters={"region": "south", "month": 3}, on_progress=progress)
        print(f"5. Run {run['id']} {run['status']} in {run['duration_seconds']} s -> {run['output_path']}")

        # 6. The history: the run's record, its recorded results, and the notebook's executions.
        record = platform.execution(run["id"])
        print(f"6. Recorded: {record['status']}, started {record['started_at']}")
        results = {
            r["name"]: r["value_numeric"] if r["value_numeric"] is not None else r["value_json"]
            for r in platform.results(run["id"])
        }
        print(f"   results: {json.dumps(results)}")
        runs = platform.executions(notebook_id=notebook["id"])
        print(f"   {len(runs)} execution(s) of {notebook['name']}")
        if run["status"] != "completed":
            raise SystemExit(1)


if __name__ == "__main__":
    main()
