"""``nbp``, the platform's command line (Typer + Rich) on the SDK.

Every command takes ``--json`` (its answer as JSON on stdout, for scripts). Exit codes say what happened:
0 done; 1 the run ended but not ``completed``; 2 a usage error; 3 not found; 4 not signed in or not
allowed; 5 refused input (invalid, conflict); 6 the platform is unavailable; 130 interrupted.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import webbrowser
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.prompt import Confirm
from rich.table import Table

from nbp.client import Client, CredentialStore, NbpError, SignInError, signin, token_claims
from nbp.client import errors as api_errors
from nbp.client.credentials import resolve_server
from nbp.client.models import TERMINAL, Run

EXIT_RUN_NOT_COMPLETED = 1
EXIT_NOT_FOUND = 3
EXIT_AUTH = 4
EXIT_REFUSED = 5
EXIT_UNAVAILABLE = 6
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="nbp",
    help="notebook-platform from the command line: notebooks, parameters, runs, outputs, history.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
notebooks_app = typer.Typer(help="Registered notebooks.", no_args_is_help=True)
params_app = typer.Typer(help="A notebook's parameter definitions.", no_args_is_help=True)
runs_app = typer.Typer(help="Runs: live state, history, outputs, cancel.", no_args_is_help=True)
app.add_typer(notebooks_app, name="notebooks")
app.add_typer(params_app, name="params")
schedules_app = typer.Typer(help="Notebooks on a calendar: cron in a timezone.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(schedules_app, name="schedules")

out = Console()
err = Console(stderr=True)

Json = Annotated[bool, typer.Option("--json", help="Print the answer as JSON (for scripts).")]
Server = Annotated[
    str | None,
    typer.Option(
        "--server", "-s", envvar="NBP_URL", help="The platform's URL (default: the last signed in to)."
    ),
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


class _State:
    server: str | None = None


state = _State()


@app.callback()
def _global(server: Server = None) -> None:
    state.server = server


def _client() -> Client:
    return Client(state.server)


def _print_json(value: Any) -> None:
    out.print_json(json.dumps(value, default=str), highlight=False) if out.is_terminal else print(
        json.dumps(value, default=str)
    )


def _fail(message: str, code: int) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def _api_errors() -> Iterator[None]:
    """API errors as a message naming the fields and rules, and the exit code for their kind."""
    try:
        yield
    except SignInError as exc:
        _fail(str(exc), EXIT_AUTH)
    except NbpError as exc:
        lines = [exc.detail] + [f"  {e['field']}: {e['message']} ({e['rule']})" for e in exc.errors]
        if isinstance(exc, api_errors.Unauthorized):
            lines.append("  sign in with `nbp login`")
        code = {
            api_errors.NotFound: EXIT_NOT_FOUND,
            api_errors.Unauthorized: EXIT_AUTH,
            api_errors.Forbidden: EXIT_AUTH,
            api_errors.Invalid: EXIT_REFUSED,
            api_errors.Conflict: EXIT_REFUSED,
            api_errors.BadRequest: EXIT_REFUSED,
            api_errors.Unavailable: EXIT_UNAVAILABLE,
        }.get(type(exc), EXIT_REFUSED)
        _fail("\n".join(lines), code)


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], title: str | None = None) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    out.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _value(text: str) -> Any:
    """``-p key=value``: JSON when it parses (5, 0.5, true, [1], {"a": 1}, "quoted"), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _pairs(items: Sequence[str] | None, option: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not key=value", param_hint=option)
        values[key] = _value(text)
    return values


# Signing in


@app.command()
def login(
    server: Server = None,
    device: Annotated[bool, typer.Option("--device", help="Sign in on any device with a code.")] = False,
    issuer: Annotated[str | None, typer.Option(help="The realm's URL, if the server does not say.")] = None,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the URL instead of opening it.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Sign in through Keycloak (browser flow; --device for the device flow). Tokens are cached per server
    in your config folder (mode 0600) and refreshed."""
    target = resolve_server(server or state.server)
    store = CredentialStore()
    with _api_errors():
        realm = signin.discover(target, issuer)
        if device:
            code = signin.start_device_flow(realm)
            link = code.verification_uri_complete or code.verification_uri
            if as_json:
                print(
                    json.dumps(
                        {
                            "verification_uri": code.verification_uri,
                            "verification_uri_complete": link,
                            "user_code": code.user_code,
                            "expires_in": code.expires_in,
                        }
                    ),
                    flush=True,
                )
            else:
                err.print(
                    f"Open [bold]{link}[/bold]\nand confirm the code [bold]{code.user_code}[/bold].",
                    soft_wrap=True,  # a URL cut in two cannot be clicked or pasted
                )
                sys.stderr.flush()
            if not no_browser and not as_json and os.environ.get("DISPLAY"):
                webbrowser.open(link)
            stored = signin.finish_device_flow(realm, code)
        else:
            opener: Callable[[str], object] = (
                (lambda url: err.print(f"Open this URL to sign in:\n{url}", soft_wrap=True, highlight=False))
                if no_browser
                else webbrowser.open
            )
            stored = signin.browser_flow(realm, opener)
        store.put(stored)
    claims = token_claims(stored.access_token)
    if as_json:
        print(json.dumps({"server": stored.server, "username": claims.get("preferred_username")}))
    else:
        out.print(f"Signed in to {stored.server} as [bold]{claims.get('preferred_username')}[/bold].")


@app.command()
def logout(server: Server = None, as_json: Json = False) -> None:
    """Forget the tokens for a server and end the session in Keycloak."""
    target = resolve_server(server or state.server)
    removed = CredentialStore().remove(target)
    if removed is not None:
        signin.revoke(removed)
    if as_json:
        print(json.dumps({"server": target, "signed_out": removed is not None}))
    else:
        out.print(f"Signed out of {target}." if removed else f"Not signed in to {target}.")


@app.command()
def whoami(as_json: Json = False) -> None:
    """Who you are on the server: your username, groups and roles."""
    with _api_errors(), _client() as client:
        token = client.token()
        claims = token_claims(token)
        info = {
            "server": client.server,
            "username": claims.get("preferred_username") or ("dev" if token is None else None),
            "groups": claims.get("groups", []),
            "roles": sorted((claims.get("realm_access") or {}).get("roles", [])),
            "expires_at": datetime.fromtimestamp(claims["exp"], UTC).isoformat() if "exp" in claims else None,
            "signed_in": token is not None,
        }
        client.health()
    if as_json:
        print(json.dumps(info))
        return
    if not info["signed_in"]:
        out.print(f"{info['server']}: not signed in (a server without sign-in treats you as 'dev')")
        return
    out.print(f"{info['username']} on {info['server']}  groups: {', '.join(info['groups']) or '-'}")


# Notebooks

NOTEBOOK_COLUMNS = ("id", "name", "username", "file_path", "tags", "updated_at")


@notebooks_app.command("list")
def notebooks_list(
    user: Annotated[str | None, typer.Option("--user", "-u")] = None,
    tag: Annotated[str | None, typer.Option("--tag", "-t")] = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Part of the name.")] = None,
    as_json: Json = False,
) -> None:
    """Your notebooks (an admin's: everyone's)."""
    with _api_errors(), _client() as client:
        rows = list(client.iter_notebooks(username=user, tag=tag, name=name))
    _print_json(rows) if as_json else _table(rows, NOTEBOOK_COLUMNS)


@notebooks_app.command("show")
def notebooks_show(
    notebook: Annotated[str, typer.Argument(help="Id or name.")], as_json: Json = False
) -> None:
    """A notebook and its parameter definitions."""
    with _api_errors(), _client() as client:
        detail = client.notebook(_notebook_id(client, notebook))
    if as_json:
        _print_json(detail)
        return
    _table([dict(detail)], NOTEBOOK_COLUMNS)
    _table(detail.get("parameters", []), PARAM_COLUMNS, title="parameters")


@notebooks_app.command("register")
def notebooks_register(
    path: Annotated[str, typer.Argument(help="Relative to your folder, or /home/<you>/...")],
    name: Annotated[str | None, typer.Option("--name", "-n", help="Default: the file's name.")] = None,
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t")] = None,
    infer: Annotated[
        bool, typer.Option("--infer", help="Define its parameters from its parameters cell.")
    ] = False,
    yes: Yes = False,
    as_json: Json = False,
) -> None:
    """Register a notebook of your folder. --infer defines its parameters from its `parameters` cell
    (Papermill's inspection), shown before they are stored for you to confirm (unless --yes or --json)."""
    title = name or Path(path).stem
    with _api_errors(), _client() as client:
        inferred: list[Any] | None = None
        if infer:
            found = client.infer_parameters(path)
            inferred = list(found["parameters"])
            if not as_json:
                if not found["has_parameters_cell"]:
                    err.print(f"{path} has no cell tagged 'parameters': nothing to infer.")
                else:
                    _table(inferred, PARAM_COLUMNS[1:], title=f"parameters inferred from {found['path']}")
            if inferred and not (yes or as_json) and not Confirm.ask("Store these parameters?", console=err):
                raise typer.Exit(EXIT_INTERRUPTED)
        created = client.register(path, name=title, description=description, tags=tag, parameters=inferred)
    if as_json:
        _print_json(created)
    else:
        out.print(
            f"Registered notebook {created['id']} [bold]{created['name']}[/bold] ({created['file_path']})."
        )
        if created.get("parameters"):
            _table(created["parameters"], PARAM_COLUMNS, title="parameters")


@notebooks_app.command("delete")
def notebooks_delete(
    notebook: Annotated[str, typer.Argument(help="Id or name.")], yes: Yes = False, as_json: Json = False
) -> None:
    """Remove a notebook and its parameters (its runs stay in the history)."""
    with _api_errors(), _client() as client:
        notebook_id = _notebook_id(client, notebook)
        if not (yes or as_json) and not Confirm.ask(f"Delete notebook {notebook_id}?", console=err):
            raise typer.Exit(EXIT_INTERRUPTED)
        client.delete_notebook(notebook_id)
    _print_json({"deleted": notebook_id}) if as_json else out.print(f"Deleted notebook {notebook_id}.")


def _notebook_id(client: Client, notebook: str) -> int:
    """A notebook by id, or by its exact name among yours."""
    if notebook.isdigit():
        return int(notebook)
    found = [n for n in client.iter_notebooks(name=notebook) if n["name"] == notebook]
    if len(found) != 1:
        raise api_errors.NotFound(
            404,
            {
                "detail": f"no notebook is named {notebook!r}"
                if not found
                else f"{len(found)} notebooks are named {notebook!r}: give its id"
            },
        )
    return found[0]["id"]


# Parameters

PARAM_COLUMNS = (
    "id",
    "param_name",
    "param_type",
    "default_value",
    "required",
    "validation_rules",
    "description",
)


@params_app.command("list")
def params_list(notebook: Annotated[str, typer.Argument(help="Id or name.")], as_json: Json = False) -> None:
    """A notebook's parameter definitions."""
    with _api_errors(), _client() as client:
        rows = client.parameters(_notebook_id(client, notebook))
    _print_json(rows) if as_json else _table(rows, PARAM_COLUMNS)


def _definition(
    param_type: str | None,
    default: str | None,
    required: bool | None,
    description: str | None,
    rule: Sequence[str] | None,
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if param_type is not None:
        values["param_type"] = param_type
    if default is not None:
        values["default_value"] = _value(default)
    if required is not None:
        values["required"] = required
    if description is not None:
        values["description"] = description
    if rule:
        values["validation_rules"] = _pairs(rule, "--rule")
    return values


TypeOption = Annotated[str | None, typer.Option("--type", help="str int float bool list dict date datetime")]
DefaultOption = Annotated[str | None, typer.Option("--default", help="JSON, or plain text for a string.")]
RequiredOption = Annotated[bool | None, typer.Option("--required/--optional")]
DescriptionOption = Annotated[str | None, typer.Option("--description", "-d")]
RuleOption = Annotated[list[str] | None, typer.Option("--rule", help='min=0, choices=["a","b"], ...')]


@params_app.command("add")
def params_add(
    notebook: Annotated[str, typer.Argument(help="Id or name.")],
    name: str,
    param_type: TypeOption = "str",
    default: DefaultOption = None,
    required: RequiredOption = None,
    description: DescriptionOption = None,
    rule: RuleOption = None,
    as_json: Json = False,
) -> None:
    """Define a parameter."""
    with _api_errors(), _client() as client:
        created = client.add_parameter(
            _notebook_id(client, notebook),
            param_name=name,
            **_definition(param_type, default, required, description, rule),
        )
    _print_json(created) if as_json else _table([dict(created)], PARAM_COLUMNS)


@params_app.command("set")
def params_set(
    parameter_id: int,
    param_type: TypeOption = None,
    default: DefaultOption = None,
    required: RequiredOption = None,
    description: DescriptionOption = None,
    rule: RuleOption = None,
    as_json: Json = False,
) -> None:
    """Change a parameter definition (the options given)."""
    with _api_errors(), _client() as client:
        updated = client.update_parameter(
            parameter_id, **_definition(param_type, default, required, description, rule)
        )
    _print_json(updated) if as_json else _table([dict(updated)], PARAM_COLUMNS)


@params_app.command("delete")
def params_delete(parameter_id: int, as_json: Json = False) -> None:
    """Remove a parameter definition."""
    with _api_errors(), _client() as client:
        client.delete_parameter(parameter_id)
    _print_json({"deleted": parameter_id}) if as_json else out.print(f"Deleted parameter {parameter_id}.")


# Runs


@app.command()
def run(
    notebook: Annotated[
        str, typer.Argument(help="A registered notebook (id or name), or a path in your folder.")
    ],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="key=value (JSON or text).")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow the run until it ends.")] = False,
    output_path: Annotated[str | None, typer.Option("--output", "-o")] = None,
    as_json: Json = False,
) -> None:
    """Run a notebook. With --wait: live progress (cells done, the current cell), then the status,
    duration, recorded results and where the output is; Ctrl-C offers to cancel the run."""
    parameters = _pairs(param, "--param")
    with _api_errors(), _client() as client:
        target: int | str = notebook if notebook.endswith(".ipynb") else _notebook_id(client, notebook)
        started = client.submit(target, parameters=parameters, output_path=output_path)
        if not wait:
            _print_json(started) if as_json else out.print(
                f"Run {started['id']} is {started['status']}: follow it with `nbp runs show {started['id']}`"
            )
            return
        ended = _follow(client, started, quiet=as_json)
    if as_json:
        _print_json(ended)
    else:
        _summary(client.server, ended)
    if ended["status"] != "completed":
        raise typer.Exit(EXIT_RUN_NOT_COMPLETED)


def _follow(client: Client, started: Run, *, quiet: bool) -> Run:
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("cells"),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
    )
    task = progress.add_task(f"run {started['id']} queued", total=None)

    def show(now: Run) -> None:
        bar = now.get("progress") or {"cells_done": 0, "cells_total": None, "current_cell": None}
        current = bar.get("current_cell")
        where = f", cell {current}" if current is not None else ""
        progress.update(
            task,
            completed=bar["cells_done"],
            total=bar["cells_total"],
            description=f"run {now['id']} {now['status']}{where}",
        )

    while True:
        try:
            with progress:
                return client.wait(started["id"], on_progress=show)
        except KeyboardInterrupt:
            if not sys.stdin.isatty() or Confirm.ask(f"\nCancel run {started['id']}?", console=err):
                client.cancel(started["id"])
                err.print(f"Cancelling run {started['id']}...")
                return client.wait(started["id"])
            err.print(f"Run {started['id']} goes on; `nbp runs show {started['id']}` follows it.")
            raise typer.Exit(EXIT_INTERRUPTED) from None


def _summary(server: str, ended: Run) -> None:
    colour = "green" if ended["status"] == "completed" else "red"
    duration = ended.get("duration_seconds")
    out.print(
        f"Run {ended['id']} [{colour}]{ended['status']}[/{colour}]"
        + (f" in {duration:.1f} s" if duration is not None else "")
    )
    if ended.get("error_message"):
        out.print(f"[red]{ended['error_message']}[/red]", highlight=False)
    if ended.get("results"):
        _table(
            [
                {
                    "name": r["name"],
                    "value": r["value_numeric"]
                    if r.get("value_numeric") is not None
                    else r.get("value_json"),
                }
                for r in ended["results"]
            ],
            ("name", "value"),
            title="results",
        )
    out.print(
        f"output: {ended.get('output_path')} (in your folder)  {server}/executions/{ended['id']}/output"
    )


RUN_COLUMNS = ("id", "status", "username", "notebook_id", "input_path", "started_at", "completed_at")


@runs_app.command("list")
def runs_list(
    status: Annotated[str | None, typer.Option("--status")] = None,
    notebook: Annotated[int | None, typer.Option("--notebook", help="A notebook's id.")] = None,
    user: Annotated[str | None, typer.Option("--user", "-u")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 20,
    as_json: Json = False,
) -> None:
    """Recorded runs, newest first (the history)."""
    with _api_errors(), _client() as client:
        rows = client.executions(limit=limit, status=status, notebook_id=notebook, username=user)
    _print_json(rows) if as_json else _table([dict(r) for r in rows], RUN_COLUMNS)


@runs_app.command("show")
def runs_show(run_id: int, as_json: Json = False) -> None:
    """A run's live state (progress, error, results)."""
    with _api_errors(), _client() as client:
        now = client.run_status(run_id)
    if as_json:
        _print_json(now)
    elif now["status"] in TERMINAL:
        _summary(client.server, now)
    else:
        bar = now["progress"]
        out.print(f"Run {run_id} {now['status']}: {bar['cells_done']}/{bar['cells_total'] or '?'} cells")


@runs_app.command("cancel")
def runs_cancel(run_id: int, as_json: Json = False) -> None:
    """Cancel a queued or running run."""
    with _api_errors(), _client() as client:
        cancelled = client.cancel(run_id)
    _print_json(cancelled) if as_json else out.print(
        f"Run {run_id}: {cancelled['status']} (cancel requested)."
    )


@runs_app.command("output")
def runs_output(
    run_id: int,
    html: Annotated[bool, typer.Option("--html", help="Rendered to HTML.")] = False,
    open_it: Annotated[bool, typer.Option("--open", help="Open it in the browser (implies --html).")] = False,
    to: Annotated[
        Path | None, typer.Option("--to", "-o", help="Write to this file instead of stdout.")
    ] = None,
    as_json: Json = False,
) -> None:
    """A run's output notebook (.ipynb JSON, or --html)."""
    html = html or open_it
    with _api_errors(), _client() as client:
        content = client.output(run_id, html=html)
    if open_it:
        target = to or Path(tempfile.mkdtemp(prefix="nbp-")) / f"run-{run_id}.html"
        target.write_text(content)
        webbrowser.open(target.resolve().as_uri())
        _print_json({"path": str(target)}) if as_json else out.print(f"Opened {target}")
    elif to is not None:
        to.write_text(content)
        _print_json({"path": str(to)}) if as_json else out.print(f"Wrote {to}")
    elif as_json and not html:
        _print_json(json.loads(content))
    else:
        sys.stdout.write(content)


SCHEDULE_COLUMNS = ("id", "username", "notebook_path", "cron", "timezone", "enabled", "next_fire_at")


@schedules_app.command("list")
def schedules_list(
    user: Annotated[str | None, typer.Option("--user", "-u")] = None, as_json: Json = False
) -> None:
    """Your schedules (an admin's: everyone's)."""
    with _api_errors(), _client() as client:
        rows = client.schedules(username=user)
    _print_json(rows) if as_json else _table([dict(r) for r in rows], SCHEDULE_COLUMNS)


@schedules_app.command("show")
def schedules_show(schedule_id: int, as_json: Json = False) -> None:
    """A schedule and its next five fire times."""
    with _api_errors(), _client() as client:
        schedule = client.schedule(schedule_id)
    if as_json:
        _print_json(schedule)
        return
    out.print(
        f"Schedule {schedule_id}: {schedule['cron']} ({schedule['timezone']}), {schedule['notebook_path']}"
    )
    for instant in schedule["next_fire_times"]:
        out.print(f"  next: {instant}")


@schedules_app.command("create")
def schedules_create(
    path: Annotated[str, typer.Argument(help="The notebook, relative to your folder.")],
    cron: Annotated[str, typer.Option("--cron", help="Five fields, e.g. '30 2 * * *'.")],
    timezone: Annotated[str, typer.Option("--timezone", "--tz", help="An IANA name.")] = "UTC",
    user: Annotated[str | None, typer.Option("--user", "-u", help="Whose folder (default: yours).")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="name=JSON value")] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    catch_up: Annotated[str, typer.Option("--catch-up", help="none or latest")] = "none",
    max_concurrent: Annotated[int, typer.Option("--max-concurrent", min=1)] = 1,
    as_json: Json = False,
) -> None:
    """Run a notebook of your folder on a calendar."""
    parameters: dict[str, Any] = {}
    for item in param or []:
        name, _, raw = item.partition("=")
        try:
            parameters[name] = json.loads(raw)
        except ValueError:
            parameters[name] = raw
    with _api_errors(), _client() as client:
        token = client.token()
        # A server without sign-in treats everyone as 'dev' (as `nbp whoami` says).
        owner = user or str(token_claims(token).get("preferred_username") or "dev")
        schedule = client.create_schedule(
            cron,
            notebook_path=path,
            username=owner,
            timezone=timezone,
            parameters=parameters,
            description=description,
            catch_up=catch_up,
            max_concurrent=max_concurrent,
        )
    _print_json(schedule) if as_json else out.print(
        f"Schedule {schedule['id']} created; next fire time {schedule['next_fire_at']}."
    )


def _set_enabled(schedule_id: int, enabled: bool, as_json: bool) -> None:
    with _api_errors(), _client() as client:
        schedule = client.update_schedule(schedule_id, enabled=enabled)
    _print_json(schedule) if as_json else out.print(
        f"Schedule {schedule_id} {'resumed' if enabled else 'paused'}."
    )


@schedules_app.command("pause")
def schedules_pause(schedule_id: int, as_json: Json = False) -> None:
    """Stop firing (until resumed)."""
    _set_enabled(schedule_id, False, as_json)


@schedules_app.command("resume")
def schedules_resume(schedule_id: int, as_json: Json = False) -> None:
    """Fire again (times passed while paused do not fire)."""
    _set_enabled(schedule_id, True, as_json)


@schedules_app.command("run-now")
def schedules_run_now(schedule_id: int, as_json: Json = False) -> None:
    """Queue a run of the schedule's notebook now."""
    with _api_errors(), _client() as client:
        run = client.run_schedule_now(schedule_id)
    _print_json(run) if as_json else out.print(f"Run {run['id']} queued.")


@schedules_app.command("runs")
def schedules_runs(schedule_id: int, as_json: Json = False) -> None:
    """The schedule's runs, newest first."""
    with _api_errors(), _client() as client:
        rows = client.schedule_runs(schedule_id)
    _print_json(rows) if as_json else _table([dict(r) for r in rows], (*RUN_COLUMNS, "fire_time"))


@schedules_app.command("delete")
def schedules_delete(schedule_id: int, yes: Yes = False) -> None:
    """Delete a schedule (its runs stay)."""
    if not yes:
        typer.confirm(f"Delete schedule {schedule_id}?", abort=True)
    with _api_errors(), _client() as client:
        client.delete_schedule(schedule_id)
    out.print(f"Schedule {schedule_id} deleted.")


@app.command()
def stats(
    notebook: Annotated[int | None, typer.Option("--notebook", help="A notebook's id.")] = None,
    user: Annotated[str | None, typer.Option("--user", "-u")] = None,
    days: Annotated[float, typer.Option("--days", min=0.01, help="The window, ending now.")] = 7,
    as_json: Json = False,
) -> None:
    """Runs by status, success rate, and durations per notebook over a window."""
    since = datetime.fromtimestamp(time.time() - days * 86400, UTC).isoformat()
    with _api_errors(), _client() as client:
        figures = client.stats(since=since, notebook_id=notebook, username=user)
    if as_json:
        _print_json(figures)
        return
    rate = figures.get("success_rate")
    out.print(
        f"{figures['total']} runs since {figures['since']}: "
        + ", ".join(f"{k} {v}" for k, v in figures["by_status"].items())
        + (f"; success rate {rate:.0%}" if rate is not None else "")
    )
    if figures.get("notebooks"):
        _table(figures["notebooks"], list(figures["notebooks"][0]), title="per notebook")


@app.command()
def files(
    user: Annotated[str | None, typer.Argument(help="Default: you.")] = None, as_json: Json = False
) -> None:
    """The notebook files in your folder."""
    with _api_errors(), _client() as client:
        found = client.files(user)
    if as_json:
        _print_json(found)
    else:
        _table([dict(f) for f in found], ("relative_path", "size", "modified"))


def main() -> None:
    app()
