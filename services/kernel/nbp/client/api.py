"""The platform's Python SDK: :class:`Client` (blocking) and :class:`AsyncClient` (asyncio), the same
methods with the same names; every endpoint is described once in :mod:`nbp.client.calls`, and every
method (retries, backoff, errors, pages, steps of several calls, waiting) once in :class:`_Plans`, as a
generator that yields what to do -- send a request, pause -- which each client carries out its way: the
method blocks on a :class:`Client` and is awaited on an :class:`AsyncClient` (:class:`_Method`).

    from nbp import Client
    with Client() as nbp:                        # server and token as nbp.client.credentials finds them
        notebook = nbp.register("reports/q3.ipynb", name="Q3", infer=True)
        run = nbp.run(notebook["id"], parameters={"region": "north"}, wait=True)
        print(run["status"], run["results"])

Errors are :class:`~nbp.client.errors.NbpError` subclasses carrying the API's error body. A 503 (and a
connection that failed) is retried with exponential backoff when sending again is safe: reads, deletes,
and run submits, which carry an idempotency key.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator, Mapping
from dataclasses import replace
from typing import Any, Concatenate, Generic, NamedTuple, ParamSpec, TypeVar, cast, overload

import httpx

from nbp.client import calls
from nbp.client.calls import Call
from nbp.client.credentials import CredentialStore, TokenSource, resolve_server
from nbp.client.errors import NbpError, NotFound, Unavailable, error_for
from nbp.client.models import (
    TERMINAL,
    Execution,
    InferredParameters,
    JsonObject,
    Notebook,
    NotebookFile,
    Parameter,
    Run,
)

ProgressCallback = Callable[[Run], None]
PAGE_SIZE = 100
# How long an ended run's answer waits at most for the history to record its ending.
RECORD_WAIT_SECONDS = 30.0
T = TypeVar("T")
P = ParamSpec("P")


class _Send(NamedTuple):
    """Send one request; answered with its response, or the transport error it raised."""

    call: Call


class _Pause(NamedTuple):
    seconds: float


# What a plan yields, what it is sent back (the response or error; None after a pause), its result.
Plan = Generator[_Send | _Pause, httpx.Response | httpx.TransportError | None, T]


class _BearerAuth(httpx.Auth):
    """The current token on every request; after a 401, one retry with a refreshed token."""

    def __init__(self, source: TokenSource) -> None:
        self.source = source

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.source.token()
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and self.source.can_refresh:
            token = self.source.token(force_refresh=True)
            if token:
                request.headers["Authorization"] = f"Bearer {token}"
                yield request


def _decode(call: Call, response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = None
        raise error_for(response.status_code, body if isinstance(body, dict) else None, response.text[:500])
    if call.expect == "none":
        return None
    if call.expect == "text":
        return response.text
    if call.expect == "bytes":
        return response.content
    return response.json()


def _backoff(attempt: int, response: httpx.Response | None, base: float) -> float:
    retry_after = response.headers.get("Retry-After") if response is not None else None
    if retry_after and retry_after.isdigit():
        return min(float(retry_after), 30.0)
    return float(min(base * 2**attempt, 30.0))


class _Method(Generic[P, T]):
    """A client method written once, as the plan it carries out: on a :class:`Client` it blocks and
    answers, on an :class:`AsyncClient` it answers a coroutine (typed so for each). A plan that takes
    ``**`` keywords takes ``self`` positionally only, so that no keyword could be taken for it."""

    def __init__(self, plan: Callable[Concatenate[_Plans, P], Plan[T]]) -> None:
        self._plan = plan
        self.__doc__ = plan.__doc__

    @overload
    def __get__(self, client: None, owner: type[Any]) -> _Method[P, T]: ...

    @overload
    def __get__(self, client: Client, owner: type[Any]) -> Callable[P, T]: ...

    @overload
    def __get__(self, client: AsyncClient, owner: type[Any]) -> Callable[P, Coroutine[Any, Any, T]]: ...

    def __get__(self, client: _Plans | None, owner: type[Any]) -> Any:
        if client is None:
            return self
        plan = self._plan

        @functools.wraps(plan)
        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return client._carry_out(plan(client, *args, **kwargs))

        return method


class _Plans:
    """What both clients do, written once: each method that talks to the server is a :data:`Plan`,
    carried out by the client's ``_carry_out``."""

    def __init__(
        self,
        server: str | None,
        token: str | None,
        timeout: float,
        retries: int,
        backoff: float,
        store: CredentialStore | None,
    ) -> None:
        store = store or CredentialStore()
        self.server = resolve_server(server, store)
        self._tokens = TokenSource(self.server, token, store)
        self._auth = _BearerAuth(self._tokens)
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff

    def token(self) -> str | None:
        """The current access token (refreshed when it is about to expire); None without sign-in."""
        return self._tokens.token()

    def username(self) -> str:
        """Who the token says the caller is (``dev`` on a server without sign-in)."""
        return token_username(self.token())

    def _answer(self, call: Call) -> Plan[Any]:
        """The decoded answer to ``call``, or its error raised; a 503 or a lost connection is retried
        with backoff when ``call.retry`` says sending again is safe."""
        attempts = self._retries + 1 if call.retry else 1
        for attempt in range(attempts):
            outcome = yield _Send(call)
            response = outcome if isinstance(outcome, httpx.Response) else None
            if isinstance(outcome, httpx.TransportError) and attempt + 1 >= attempts:
                raise Unavailable(0, None, f"{self.server} is not reachable: {outcome}") from outcome
            if response is not None and (response.status_code != 503 or attempt + 1 >= attempts):
                return _decode(call, response)
            yield _Pause(_backoff(attempt, response, self._backoff))
        raise AssertionError("unreachable")  # the loop returns or raises on its last attempt

    def _register(
        self,
        file_path: str,
        name: str,
        username: str | None,
        description: str | None,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
        infer: bool,
        parameters: list[Mapping[str, Any]] | None,
    ) -> Plan[Notebook]:
        owner = username or self.username()
        if infer and parameters is None:
            inferred = yield from self._answer(calls.infer_parameters(owner, file_path))
            parameters = list(inferred["parameters"])
        created = yield from self._answer(
            calls.create_notebook(
                name=name,
                file_path=file_path,
                username=owner,
                description=description,
                tags=tags,
                metadata=metadata,
            )
        )
        if parameters:
            try:
                yield from self._answer(calls.create_parameters(created["id"], parameters))
            except NbpError:
                yield from self._answer(calls.delete_notebook(created["id"]))
                raise
        return cast(Notebook, (yield from self._answer(calls.get_notebook(created["id"]))))

    def _submit(
        self,
        notebook: int | str,
        parameters: Mapping[str, Any] | None,
        username: str | None,
        idempotency_key: str | None,
        options: Mapping[str, Any],
    ) -> Plan[Run]:
        if isinstance(notebook, int):
            call = calls.submit(
                notebook_id=notebook, parameters=parameters, idempotency_key=idempotency_key, **options
            )
        else:
            call = calls.submit(
                notebook_path=notebook,
                username=username or self.username(),
                parameters=parameters,
                idempotency_key=idempotency_key,
                **options,
            )
        return cast(Run, (yield from self._answer(call)))

    def _wait(
        self, run_id: int, on_progress: ProgressCallback | None, poll: float, within: float | None
    ) -> Plan[Run]:
        deadline = None if within is None else time.monotonic() + within
        while True:
            run = cast(Run, (yield from self._answer(calls.get_run(run_id))))
            if on_progress is not None:
                on_progress(run)
            if run["status"] in TERMINAL:
                yield from self._recorded(run_id, poll, deadline)
                return run
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} is still {run['status']} after {within} s")
            yield _Pause(poll)

    def _recorded(self, run_id: int, poll: float, deadline: float | None) -> Plan[None]:
        """Until the history has the ended run's ending: the executor's outbox delivers it a moment
        after the run ends, and what the caller reads next (the record, its results) must be the ended
        run, as the synchronous endpoints answer. An unreachable history delays the answer by at most
        RECORD_WAIT_SECONDS (or until ``deadline``); it does not withhold it."""
        until = time.monotonic() + RECORD_WAIT_SECONDS
        if deadline is not None:
            until = min(until, deadline)
        while True:
            try:
                record = yield from self._answer(replace(calls.get_execution(run_id), retry=False))
            except (NotFound, Unavailable):
                pass  # not recorded yet, or the history unreachable for now
            except NbpError:
                return  # the caller may not read the history: there is nothing to wait for
            else:
                if record["status"] in TERMINAL:
                    return
            if time.monotonic() >= until:
                return
            yield _Pause(poll)

    def _run(
        self,
        notebook: int | str,
        parameters: Mapping[str, Any] | None,
        wait: bool,
        on_progress: ProgressCallback | None,
        options: dict[str, Any],
    ) -> Plan[Run]:
        username, key = options.pop("username", None), options.pop("idempotency_key", None)
        run = yield from self._submit(notebook, parameters, username, key, options)
        return (yield from self._wait(run["id"], on_progress, 0.5, None)) if wait else run

    def _files(self, username: str | None) -> Plan[list[NotebookFile]]:
        listing = yield from self._answer(calls.list_files(username or self.username()))
        return cast(list[NotebookFile], listing["notebooks"])

    def _page(self, make: Callable[[int, int], Call], page_size: int, offset: int) -> Plan[list[Any]]:
        return cast(list[Any], (yield from self._answer(make(page_size, offset))))

    def _carry_out(self, plan: Plan[T]) -> Any:
        """Do what ``plan`` asks: blocking (:class:`Client`) or as a coroutine (:class:`AsyncClient`)."""
        raise NotImplementedError

    # Notebooks

    @_Method
    def notebooks(
        self,
        *,
        username: str | None = None,
        tag: str | None = None,
        name: str | None = None,
        limit: int = PAGE_SIZE,
        offset: int = 0,
    ) -> Plan[list[Notebook]]:
        return self._answer(
            calls.list_notebooks(username=username, tag=tag, name=name, limit=limit, offset=offset)
        )

    @_Method
    def notebook(self, notebook_id: int) -> Plan[Notebook]:
        """A notebook with its parameter definitions."""
        return self._answer(calls.get_notebook(notebook_id))

    @_Method
    def register(
        self,
        file_path: str,
        *,
        name: str,
        username: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        infer: bool = False,
        parameters: list[Mapping[str, Any]] | None = None,
    ) -> Plan[Notebook]:
        """Register a notebook of ``username``'s folder (default: the signed-in user), with ``parameters``
        (or, with ``infer``, those its parameters cell defines). Answers the notebook with its parameters;
        if the parameters are refused, the notebook is not kept either."""
        return self._register(file_path, name, username, description, tags, metadata, infer, parameters)

    @_Method
    def infer_parameters(self, file_path: str, *, username: str | None = None) -> Plan[InferredParameters]:
        """What a notebook's parameters cell defines (Papermill's inspection); nothing is stored."""
        return self._answer(calls.infer_parameters(username or self.username(), file_path))

    @_Method
    def update_notebook(self, /, notebook_id: int, **changes: Any) -> Plan[Notebook]:
        return self._answer(calls.update_notebook(notebook_id, changes))

    @_Method
    def delete_notebook(self, notebook_id: int) -> Plan[None]:
        return self._answer(calls.delete_notebook(notebook_id))

    # Parameters

    @_Method
    def parameters(self, notebook_id: int) -> Plan[list[Parameter]]:
        return self._answer(calls.list_parameters(notebook_id))

    @_Method
    def parameter(self, parameter_id: int) -> Plan[Parameter]:
        return self._answer(calls.get_parameter(parameter_id))

    @_Method
    def add_parameter(self, /, notebook_id: int, **definition: Any) -> Plan[Parameter]:
        return self._answer(calls.create_parameter(notebook_id, definition))

    @_Method
    def add_parameters(self, notebook_id: int, definitions: list[Mapping[str, Any]]) -> Plan[list[Parameter]]:
        """Several at once: all are stored, or none."""
        return self._answer(calls.create_parameters(notebook_id, definitions))

    @_Method
    def update_parameter(self, /, parameter_id: int, **changes: Any) -> Plan[Parameter]:
        return self._answer(calls.update_parameter(parameter_id, changes))

    @_Method
    def delete_parameter(self, parameter_id: int) -> Plan[None]:
        return self._answer(calls.delete_parameter(parameter_id))

    # Runs

    @_Method
    def submit(
        self,
        /,
        notebook: int | str,
        *,
        parameters: Mapping[str, Any] | None = None,
        username: str | None = None,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> Plan[Run]:
        """Queue a run of a registered notebook (its id) or of a file of the user's folder (its path)."""
        return self._submit(notebook, parameters, username, idempotency_key, options)

    @_Method
    def run_status(self, run_id: int) -> Plan[Run]:
        return self._answer(calls.get_run(run_id))

    @_Method
    def active_runs(self, *, username: str | None = None) -> Plan[list[Run]]:
        return self._answer(calls.active_runs(username=username))

    @_Method
    def cancel(self, run_id: int) -> Plan[Run]:
        return self._answer(calls.cancel_run(run_id))

    @_Method
    def wait(
        self,
        run_id: int,
        *,
        on_progress: ProgressCallback | None = None,
        poll: float = 0.5,
        within: float | None = None,
    ) -> Plan[Run]:
        """The run once it has ended and the history has recorded its ending (so that ``execution`` and
        ``results`` read the ended run); ``on_progress`` sees every state polled on the way."""
        return self._wait(run_id, on_progress, poll, within)

    @_Method
    def run(
        self,
        /,
        notebook: int | str,
        *,
        parameters: Mapping[str, Any] | None = None,
        wait: bool = True,
        on_progress: ProgressCallback | None = None,
        **options: Any,
    ) -> Plan[Run]:
        """Submit, and (``wait``) follow the run until it ends."""
        return self._run(notebook, parameters, wait, on_progress, options)

    @_Method
    def output(self, run_id: int, *, html: bool = False) -> Plan[str]:
        """The output notebook: ``.ipynb`` JSON text, or rendered to HTML."""
        return self._answer(calls.output(run_id, html=html))

    @_Method
    def files(self, username: str | None = None) -> Plan[list[NotebookFile]]:
        """The notebook files of a user's folder."""
        return self._files(username)

    # Schedules

    @_Method
    def schedules(self, *, username: str | None = None) -> Plan[list[JsonObject]]:
        return self._answer(calls.list_schedules(username=username))

    @_Method
    def schedule(self, schedule_id: int) -> Plan[JsonObject]:
        """A schedule with its next five fire times."""
        return self._answer(calls.get_schedule(schedule_id))

    @_Method
    def create_schedule(self, /, cron: str, **fields: Any) -> Plan[JsonObject]:
        """``notebook_id`` or ``notebook_path`` (+ ``username``), ``timezone``, ``parameters``, ``enabled``,
        ``description``, ``catch_up``, ``max_concurrent``, ``retry``: as ``POST /schedules`` takes them."""
        return self._answer(calls.create_schedule({"cron": cron, **fields}))

    @_Method
    def update_schedule(self, /, schedule_id: int, **changes: Any) -> Plan[JsonObject]:
        return self._answer(calls.update_schedule(schedule_id, changes))

    @_Method
    def delete_schedule(self, schedule_id: int) -> Plan[None]:
        return self._answer(calls.delete_schedule(schedule_id))

    @_Method
    def run_schedule_now(self, schedule_id: int) -> Plan[Run]:
        return self._answer(calls.run_schedule_now(schedule_id))

    @_Method
    def schedule_runs(self, schedule_id: int) -> Plan[list[Run]]:
        return self._answer(calls.schedule_runs(schedule_id))

    # History

    @_Method
    def executions(
        self, /, *, limit: int = PAGE_SIZE, offset: int = 0, **filters: Any
    ) -> Plan[list[Execution]]:
        return self._answer(calls.list_executions(limit=limit, offset=offset, **filters))

    @_Method
    def execution(self, execution_id: int) -> Plan[Execution]:
        return self._answer(calls.get_execution(execution_id))

    @_Method
    def results(self, execution_id: int) -> Plan[list[JsonObject]]:
        return self._answer(calls.execution_results(execution_id))

    @_Method
    def stats(self, /, **filters: Any) -> Plan[JsonObject]:
        return self._answer(calls.stats(**filters))

    # The platform

    @_Method
    def info(self) -> Plan[JsonObject]:
        return self._answer(calls.root())

    @_Method
    def health(self) -> Plan[JsonObject]:
        return self._answer(calls.health())


class Client(_Plans):
    """The platform over HTTP, blocking. ``server``/``token`` default as :mod:`nbp.client.credentials`
    says; ``retries`` is how often a 503 is retried (with backoff from ``backoff`` seconds, doubling)."""

    def __init__(
        self,
        server: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 0.5,
        store: CredentialStore | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(server, token, timeout, retries, backoff, store)
        self._http = httpx.Client(base_url=self.server, timeout=timeout, auth=self._auth, transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _carry_out(self, plan: Plan[T]) -> T:
        """Do what ``plan`` asks, blocking, until it returns."""
        outcome: httpx.Response | httpx.TransportError | None = None
        while True:
            try:
                step = plan.send(outcome)
            except StopIteration as done:
                return cast(T, done.value)
            outcome = None
            if isinstance(step, _Pause):
                time.sleep(step.seconds)
                continue
            call = step.call
            try:
                outcome = self._http.request(
                    call.method, call.path, params=call.params, json=call.json, headers=dict(call.headers)
                )
            except httpx.TransportError as exc:
                outcome = exc

    def send(self, call: Call) -> Any:
        """Send one described call; the decoded answer, or the error as an exception."""
        return self._carry_out(self._answer(call))

    def _pages(self, make: Callable[[int, int], Call], page_size: int) -> Iterator[Any]:
        offset = 0
        while len(page := self._carry_out(self._page(make, page_size, offset))) == page_size:
            yield from page
            offset += page_size
        yield from page

    def iter_notebooks(
        self,
        *,
        username: str | None = None,
        tag: str | None = None,
        name: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> Iterator[Notebook]:
        """Every matching notebook, page after page."""
        return self._pages(_notebooks_page(username, tag, name), page_size)

    def iter_executions(self, *, page_size: int = PAGE_SIZE, **filters: Any) -> Iterator[Execution]:
        return self._pages(_executions_page(filters), page_size)


class AsyncClient(_Plans):
    """:class:`Client` for asyncio: the same methods, awaited; iterators are ``async for``."""

    def __init__(
        self,
        server: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 0.5,
        store: CredentialStore | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(server, token, timeout, retries, backoff, store)
        self._http = httpx.AsyncClient(
            base_url=self.server, timeout=timeout, auth=self._auth, transport=transport
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _carry_out(self, plan: Plan[T]) -> T:
        """Do what ``plan`` asks, awaiting, until it returns."""
        outcome: httpx.Response | httpx.TransportError | None = None
        while True:
            try:
                step = plan.send(outcome)
            except StopIteration as done:
                return cast(T, done.value)
            outcome = None
            if isinstance(step, _Pause):
                await asyncio.sleep(step.seconds)
                continue
            call = step.call
            try:
                outcome = await self._http.request(
                    call.method, call.path, params=call.params, json=call.json, headers=dict(call.headers)
                )
            except httpx.TransportError as exc:
                outcome = exc

    async def send(self, call: Call) -> Any:
        return await self._carry_out(self._answer(call))

    async def _pages(self, make: Callable[[int, int], Call], page_size: int) -> AsyncIterator[Any]:
        offset = 0
        while len(page := await self._carry_out(self._page(make, page_size, offset))) == page_size:
            for item in page:
                yield item
            offset += page_size
        for item in page:
            yield item

    def iter_notebooks(
        self,
        *,
        username: str | None = None,
        tag: str | None = None,
        name: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> AsyncIterator[Notebook]:
        """Every matching notebook, page after page."""
        return self._pages(_notebooks_page(username, tag, name), page_size)

    def iter_executions(self, *, page_size: int = PAGE_SIZE, **filters: Any) -> AsyncIterator[Execution]:
        return self._pages(_executions_page(filters), page_size)


def _notebooks_page(username: str | None, tag: str | None, name: str | None) -> Callable[[int, int], Call]:
    def page(limit: int, offset: int) -> Call:
        return calls.list_notebooks(username=username, tag=tag, name=name, limit=limit, offset=offset)

    return page


def _executions_page(filters: Mapping[str, Any]) -> Callable[[int, int], Call]:
    def page(limit: int, offset: int) -> Call:
        return calls.list_executions(limit=limit, offset=offset, **filters)

    return page


def token_claims(token: str | None) -> JsonObject:
    """The claims of a JWT, read without checking it (the server checks; this only tells who we are)."""
    if not token or token.count(".") != 2:
        return {}
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


def token_username(token: str | None) -> str:
    return str(token_claims(token).get("preferred_username") or "dev")
