"""The platform's dashboards as code: Runs, Experiments and Usage over the history's tables.

One definition produces Superset's import bundle (``bundle()``: file name -> YAML text, the layout
``POST /api/v1/assets/import/`` and ``ImportAssetsCommand`` read): the database connection, the datasets,
the charts (their ``params`` and the matching ``query_context``, so that the chart data API answers for a
chart as saved) and the dashboards. Every object has a fixed UUID (uuid5 of its name in one namespace), so
that an import overwrites what an earlier one made instead of adding a copy.

Only the standard library and PyYAML: it runs in Superset's environment and in the tests'.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import yaml

NAMESPACE = uuid.UUID("6f1d3c2e-8a4b-4f7e-9c1d-2b5e8f0a7d31")
VERSION = "1.0.0"
DATABASE_NAME = "Platform history"
DATABASE_FILE = "databases/platform_history.yaml"
SCHEMA = "history"


def fixed_uuid(kind: str, name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{name}"))


DATABASE_UUID = fixed_uuid("database", DATABASE_NAME)


# --- datasets ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    is_dttm: bool = False
    expression: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class Metric:
    name: str
    expression: str
    label: str
    d3format: str | None = None


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    columns: tuple[Column, ...]
    metrics: tuple[Metric, ...]
    main_dttm_col: str | None
    sql: str | None = None  # None: the table SCHEMA.name itself

    @property
    def uuid(self) -> str:
        return fixed_uuid("dataset", self.name)

    def yaml(self) -> dict[str, Any]:
        return {
            "table_name": self.name,
            "main_dttm_col": self.main_dttm_col,
            "description": self.description,
            "default_endpoint": None,
            "offset": 0,
            "cache_timeout": None,
            "catalog": None,
            "schema": SCHEMA,
            "sql": self.sql,
            "params": None,
            "template_params": None,
            "filter_select_enabled": True,
            "fetch_values_predicate": None,
            "extra": None,
            "normalize_columns": False,
            "always_filter_main_dttm": False,
            "uuid": self.uuid,
            "metrics": [
                {
                    "metric_name": m.name,
                    "verbose_name": m.label,
                    "metric_type": None,
                    "expression": m.expression,
                    "description": None,
                    "d3format": m.d3format,
                    "currency": None,
                    "extra": {},
                    "warning_text": None,
                }
                for m in self.metrics
            ],
            "columns": [
                {
                    "column_name": c.name,
                    "verbose_name": c.label,
                    "is_dttm": c.is_dttm,
                    "is_active": True,
                    "type": c.type,
                    "advanced_data_type": None,
                    "groupby": True,
                    "filterable": True,
                    "expression": c.expression,
                    "description": None,
                    "python_date_format": None,
                    "extra": {},
                }
                for c in self.columns
            ],
            "version": VERSION,
            "database_uuid": DATABASE_UUID,
        }


# The datasets, and which of the history's tables each reads (each chart's query at a million runs is
# measured by bench/superset_charts.py):
#   run_counts          the daily rollups (ended runs per day, notebook, user and status) and the runs
#                       still queued or running (a partial index): thousands of rows, not a million
#   notebook_durations  the last 30 days of the daily rollups' duration histograms: p50/p95 within 4.4%
#   run_groups          the daily rollups, once per group of the runs' owner (the owner's latest run's
#                       groups: one index probe per user)
#   notebook_executions the runs table itself, only for the newest failures (an index range)
#   result_trends       the daily result rollups (ended runs' numbers per day, notebook and name)
#   run_results         the recorded results, the newest runs' first (an index range)

ENDED = "('completed', 'failed', 'cancelled', 'timed_out')"
FAILURES = ("failed", "timed_out")
ROLLUPS = f"{SCHEMA}.execution_rollups_daily"
RESULT_ROLLUPS = f"{SCHEMA}.execution_result_rollups_daily"
RUNS_TABLE = f"{SCHEMA}.notebook_executions"
NOT_REGISTERED = "(not registered)"
NO_GROUP = "(no group)"
# The duration histograms' buckets (nbp_history/rollups/histogram.py, checked against it by a test): bucket
# b holds [1 ms * 2^((b-1)/8), 1 ms * 2^(b/8)); a percentile in it is answered with its geometric middle.
SMALLEST_SECONDS = 0.001
BUCKETS_PER_DOUBLING = 8
# The durations' window: the last 30 days (today included), whatever the history's length.
RECENT_DAYS = 30
RECENT_DAYS_START = f"date_trunc('day', now(), 'UTC') - interval '{RECENT_DAYS - 1} days'"


def in_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"


def bucket_seconds(bucket: str) -> str:
    """SQL: the duration a percentile falling in ``bucket`` (an SQL integer) is answered with."""
    return f"{SMALLEST_SECONDS} * power(2.0::float8, ({bucket} - 0.5) / {BUCKETS_PER_DOUBLING})"


def percentile_seconds(fraction: float) -> str:
    """SQL aggregate over a notebook's buckets (``bucket``, runs ``seen`` up to it, ``total``): the
    nearest-rank percentile, the first bucket that holds the run of that rank."""
    return bucket_seconds(f"MIN(bucket) FILTER (WHERE seen >= CEIL({fraction} * total))")


def notebook_label(name: str = "notebook_name") -> str:
    return f"COALESCE({name}, '{NOT_REGISTERED}')"


RUN_COUNT = Metric("runs", "SUM(runs)", "Runs")
FAILED_RUNS = f"SUM(runs) FILTER (WHERE status IN {in_list(FAILURES)})"
ENDED_RUNS = f"NULLIF(SUM(runs) FILTER (WHERE status IN {ENDED}), 0)"
RUN_TIME_HOURS = Metric("run_time_hours", "SUM(execution_time_sum) / 3600.0", "Run time (hours)", ".2f")
DAY = Column("period_start", "TIMESTAMP WITH TIME ZONE", is_dttm=True, label="Day (UTC)")
USER = Column("username", "VARCHAR(255)", label="User")
STATUS = Column("status", "VARCHAR(16)", label="Status")

RUN_COUNTS = Dataset(
    name="run_counts",
    description=(
        "Runs per day (UTC, of queued_at), notebook, user and status: the history's daily rollups of ended "
        "runs (runs removed by retention still counted) and the runs still queued or running."
    ),
    main_dttm_col="period_start",
    sql=(
        "SELECT period_start, notebook_id, notebook_name, username, status, runs, timed_runs,\n"
        "       execution_time_sum\n"
        f"FROM {ROLLUPS}\n"
        "UNION ALL\n"
        "SELECT date_trunc('day', queued_at, 'UTC'), notebook_id, notebook_name, username, status, 1, 0, 0\n"
        f"FROM {RUNS_TABLE}\n"
        "WHERE status IN ('queued', 'running')"
    ),
    columns=(
        DAY,
        Column("notebook_id", "BIGINT"),
        Column("notebook_name", "VARCHAR(255)"),
        Column("notebook", "VARCHAR", expression=notebook_label(), label="Notebook"),
        USER,
        STATUS,
        Column("runs", "BIGINT"),
        Column("timed_runs", "BIGINT"),
        Column("execution_time_sum", "DOUBLE PRECISION"),
    ),
    metrics=(
        RUN_COUNT,
        Metric(
            "success_rate",
            f"(SUM(runs) FILTER (WHERE status = 'completed'))::float / {ENDED_RUNS}",
            "Success rate",
            ".1%",
        ),
        Metric("failures", f"COALESCE({FAILED_RUNS}, 0)", "Failures (failed, timed out)"),
        Metric("failure_rate", f"COALESCE({FAILED_RUNS}, 0)::float / {ENDED_RUNS}", "Failure rate", ".1%"),
        RUN_TIME_HOURS,
    ),
)

NOTEBOOK_DURATIONS = Dataset(
    name="notebook_durations",
    description=(
        f"Each notebook's p50 and p95 duration over the last {RECENT_DAYS} days' ended runs, read from the "
        "daily rollups' histograms (nearest rank, within 4.4% of the exact value)."
    ),
    main_dttm_col=None,
    sql=(
        "WITH buckets AS (\n"
        "    SELECT d.notebook_id, h.key::int AS bucket, SUM(h.value::bigint) AS runs\n"
        f"    FROM {ROLLUPS} AS d CROSS JOIN LATERAL jsonb_each(d.duration_histogram) AS h\n"
        f"    WHERE d.period_start >= {RECENT_DAYS_START}\n"
        "    GROUP BY d.notebook_id, h.key::int\n"
        "), ranked AS (\n"
        "    SELECT notebook_id, bucket,\n"
        "           SUM(runs) OVER (PARTITION BY notebook_id ORDER BY bucket) AS seen,\n"
        "           SUM(runs) OVER (PARTITION BY notebook_id) AS total\n"
        "    FROM buckets\n"
        "), percentiles AS (\n"
        "    SELECT notebook_id, MAX(total)::bigint AS timed_runs,\n"
        f"           {percentile_seconds(0.5)} AS p50_seconds,\n"
        f"           {percentile_seconds(0.95)} AS p95_seconds\n"
        "    FROM ranked GROUP BY notebook_id\n"
        "), names AS (\n"
        "    SELECT notebook_id, (array_agg(notebook_name ORDER BY period_start DESC))[1] AS notebook_name\n"
        f"    FROM {ROLLUPS} WHERE period_start >= {RECENT_DAYS_START} GROUP BY notebook_id\n"
        ")\n"
        f"SELECT p.notebook_id, {notebook_label('n.notebook_name')} AS notebook, p.timed_runs,\n"
        "       p.p50_seconds, p.p95_seconds\n"
        "FROM percentiles AS p JOIN names AS n ON n.notebook_id IS NOT DISTINCT FROM p.notebook_id"
    ),
    columns=(
        Column("notebook_id", "BIGINT"),
        Column("notebook", "VARCHAR", label="Notebook"),
        Column("timed_runs", "BIGINT", label=f"Runs ({RECENT_DAYS} days)"),
        Column("p50_seconds", "DOUBLE PRECISION", label=f"p50 duration (s, {RECENT_DAYS} days)"),
        Column("p95_seconds", "DOUBLE PRECISION", label=f"p95 duration (s, {RECENT_DAYS} days)"),
    ),
    metrics=(),
)

RUN_GROUPS = Dataset(
    name="run_groups",
    description=(
        "The daily rollups once for every realm group of the runs' owner, as the owner's most recent run "
        f"recorded them (owner_groups, from the token at submit); '{NO_GROUP}' for an owner in none. A run "
        "of an owner in two groups counts in both."
    ),
    main_dttm_col="period_start",
    sql=(
        "WITH owners AS (\n"
        "    SELECT u.username, COALESCE((\n"
        f"        SELECT e.owner_groups FROM {RUNS_TABLE} AS e WHERE e.username = u.username\n"
        "        ORDER BY e.queued_at DESC, e.id DESC LIMIT 1), '[]') AS owner_groups\n"
        f"    FROM (SELECT DISTINCT username FROM {ROLLUPS}) AS u\n"
        ")\n"
        "SELECT d.period_start, g.name AS group_name, d.username, d.status, d.runs, d.execution_time_sum\n"
        f"FROM {ROLLUPS} AS d JOIN owners AS o ON o.username = d.username\n"
        "CROSS JOIN LATERAL jsonb_array_elements_text(\n"
        f"    CASE WHEN jsonb_array_length(o.owner_groups) = 0 THEN '[\"{NO_GROUP}\"]'::jsonb\n"
        "         ELSE o.owner_groups END) AS g(name)"
    ),
    columns=(
        DAY,
        Column("group_name", "VARCHAR", label="Group"),
        USER,
        STATUS,
        Column("runs", "BIGINT"),
        Column("execution_time_sum", "DOUBLE PRECISION"),
    ),
    metrics=(RUN_COUNT, RUN_TIME_HOURS),
)

RUNS = Dataset(
    name="notebook_executions",
    description="Every run of every notebook (history.notebook_executions), one row per run.",
    main_dttm_col="queued_at",
    columns=(
        Column("id", "BIGINT"),
        Column("notebook_id", "BIGINT"),
        Column("notebook_name", "VARCHAR(255)"),
        Column("input_path", "VARCHAR(2048)"),
        Column("notebook", "VARCHAR", expression="COALESCE(notebook_name, input_path)", label="Notebook"),
        USER,
        STATUS,
        Column("queued_at", "TIMESTAMP WITH TIME ZONE", is_dttm=True, label="Queued at"),
        Column("started_at", "TIMESTAMP WITH TIME ZONE", is_dttm=True),
        Column("completed_at", "TIMESTAMP WITH TIME ZONE", is_dttm=True),
        Column("execution_time_seconds", "DOUBLE PRECISION", label="Duration (s)"),
        Column("attempt", "INTEGER"),
        Column("kernel_name", "VARCHAR(255)"),
        Column("error_message", "TEXT"),
        Column("error_cell_index", "INTEGER", label="Failing cell"),
        Column("error_cell_source", "TEXT", label="Cell source"),
        Column("error_ename", "VARCHAR(255)", label="Error"),
        Column("error_evalue", "TEXT", label="Error value"),
    ),
    metrics=(Metric("runs", "COUNT(*)", "Runs"),),
)

RESULT_TRENDS = Dataset(
    name="result_trends",
    description=(
        "The numbers ended runs recorded (nbp.record), per day (UTC, of queued_at), notebook and result "
        "name: the history's daily result rollups (results of runs removed by retention still counted)."
    ),
    main_dttm_col="period_start",
    sql=(
        f"SELECT period_start, notebook_id, {notebook_label()} AS notebook, name AS result, results,\n"
        "       value_sum, value_min, value_max\n"
        f"FROM {RESULT_ROLLUPS}"
    ),
    columns=(
        DAY,
        Column("notebook_id", "BIGINT"),
        Column("notebook", "VARCHAR", label="Notebook"),
        Column("result", "VARCHAR(255)", label="Result"),
        Column("results", "BIGINT"),
        Column("value_sum", "DOUBLE PRECISION"),
        Column("value_min", "DOUBLE PRECISION"),
        Column("value_max", "DOUBLE PRECISION"),
    ),
    metrics=(
        Metric("mean_value", "SUM(value_sum) / NULLIF(SUM(results), 0)", "Mean value", ".4g"),
        Metric("min_value", "MIN(value_min)", "Least value", ".4g"),
        Metric("max_value", "MAX(value_max)", "Greatest value", ".4g"),
        Metric("results", "SUM(results)", "Runs that recorded it"),
    ),
)

RESULTS = Dataset(
    name="run_results",
    description=(
        "The named results runs recorded (nbp.record), each with its run's notebook, user and parameters."
    ),
    main_dttm_col="recorded_at",
    sql=(
        "SELECT r.execution_id, r.name AS result, r.value_numeric AS value, r.recorded_at,\n"
        "       COALESCE(e.notebook_name, e.input_path) AS notebook,\n"
        "       e.notebook_id, e.username, e.status, e.queued_at,\n"
        "       e.parameters_used::text AS parameters\n"
        "FROM history.execution_results AS r\n"
        f"JOIN {RUNS_TABLE} AS e ON e.id = r.execution_id\n"
        "WHERE r.value_numeric IS NOT NULL"
    ),
    columns=(
        Column("execution_id", "BIGINT", label="Run"),
        Column("result", "VARCHAR(255)", label="Result"),
        Column("value", "DOUBLE PRECISION", label="Value"),
        Column("recorded_at", "TIMESTAMP WITH TIME ZONE", is_dttm=True, label="Recorded at"),
        Column("notebook", "VARCHAR", label="Notebook"),
        Column("notebook_id", "BIGINT"),
        USER,
        Column("status", "VARCHAR(16)"),
        Column("queued_at", "TIMESTAMP WITH TIME ZONE", is_dttm=True),
        Column("parameters", "TEXT", label="Parameters"),
    ),
    metrics=(
        Metric("mean_value", "AVG(value)", "Mean value", ".4g"),
        Metric("results", "COUNT(*)", "Results"),
    ),
)

DATASETS = (RUN_COUNTS, NOTEBOOK_DURATIONS, RUN_GROUPS, RUNS, RESULT_TRENDS, RESULTS)


# --- charts: one helper per kind ---------------------------------------------------------------------


@dataclass(frozen=True)
class Chart:
    """One chart: ``form`` is its explore form (params) beyond the common keys; ``query`` the query the
    chart data API runs for it (columns, metrics, orderby, row_limit, filters). The helpers below make
    both from one description."""

    name: str
    viz_type: str
    dataset: Dataset
    form: dict[str, Any]
    query: dict[str, Any]
    width: int = 6
    height: int = 50

    @property
    def uuid(self) -> str:
        return fixed_uuid("chart", self.name)

    def params(self) -> dict[str, Any]:
        return {
            "datasource": "0__table",  # rewritten to the imported dataset's id by the import
            "viz_type": self.viz_type,
            "time_range": "No filter",
            "adhoc_filters": [],
            "extra_form_data": {},
            "dashboards": [],
            **self.form,
        }

    def query_context(self) -> str:
        query = {
            "filters": [],
            "extras": {"having": "", "where": ""},
            "applied_time_extras": {},
            "columns": [],
            "metrics": [],
            "orderby": [],
            "annotation_layers": [],
            "row_limit": 1000,
            "series_limit": 0,
            "order_desc": True,
            "url_params": {},
            "custom_params": {},
            "custom_form_data": {},
            "time_range": "No filter",
            **self.query,
        }
        return json.dumps(
            {
                "datasource": {"id": 0, "type": "table"},
                "force": False,
                "queries": [query],
                "form_data": self.params(),
                "result_format": "json",
                "result_type": "full",
            },
            sort_keys=True,
        )

    def yaml(self) -> dict[str, Any]:
        return {
            "slice_name": self.name,
            "description": None,
            "certified_by": None,
            "certification_details": None,
            "viz_type": self.viz_type,
            "params": self.params(),
            "query_context": self.query_context(),
            "cache_timeout": None,
            "uuid": self.uuid,
            "version": VERSION,
            "dataset_uuid": self.dataset.uuid,
        }


def per_day(
    name: str,
    dataset: Dataset,
    *,
    metric: str,
    by: list[str],
    line: bool = False,
    width: int = 6,
    **form: Any,
) -> Chart:
    """A time series of ``metric`` per day of the dataset's time column, one series per value of ``by``:
    stacked bars, or lines with markers."""
    assert dataset.main_dttm_col is not None
    time = dataset.main_dttm_col
    style = {"markerEnabled": True} if line else {"stack": "Stack"}
    return Chart(
        name,
        "echarts_timeseries_line" if line else "echarts_timeseries_bar",
        dataset,
        form={
            "x_axis": time,
            "time_grain_sqla": "P1D",
            "metrics": [metric],
            "groupby": by,
            "row_limit": 10000,
            "show_legend": True,
            **style,
            **form,
        },
        query={
            "columns": [
                {
                    "timeGrain": "P1D",
                    "columnType": "BASE_AXIS",
                    "sqlExpression": time,
                    "label": time,
                    "expressionType": "SQL",
                },
                *by,
            ],
            "metrics": [metric],
            "row_limit": 10000,
        },
        width=width,
    )


def big_number(name: str, dataset: Dataset, *, metric: str, number_format: str, subheader: str) -> Chart:
    return Chart(
        name,
        "big_number_total",
        dataset,
        form={"metric": metric, "y_axis_format": number_format, "subheader": subheader},
        query={"metrics": [metric]},
        width=4,
    )


def summary_table(
    name: str, dataset: Dataset, *, by: str, metrics: list[str], order: str, limit: int
) -> Chart:
    """Metrics per value of ``by``, the largest ``order`` first."""
    return Chart(
        name,
        "table",
        dataset,
        form={
            "query_mode": "aggregate",
            "groupby": [by],
            "metrics": metrics,
            "all_columns": [],
            "percent_metrics": [],
            "timeseries_limit_metric": order,
            "order_desc": True,
            "row_limit": limit,
            "server_pagination": False,
            "table_timestamp_format": "smart_date",
            "show_cell_bars": True,
        },
        query={"columns": [by], "metrics": metrics, "orderby": [[order, False]], "row_limit": limit},
    )


def rows_table(
    name: str,
    dataset: Dataset,
    *,
    columns: list[str],
    first: str,
    limit: int,
    only: tuple[str, tuple[str, ...]] | None = None,
    number_formats: dict[str, str] | None = None,
    width: int = 12,
) -> Chart:
    """The dataset's rows themselves, the largest ``first`` first (newest, slowest); ``only``: (column,
    values) to keep; ``number_formats``: a column's d3 number format."""
    form: dict[str, Any] = {
        "query_mode": "raw",
        "all_columns": columns,
        "groupby": [],
        "metrics": [],
        "order_by_cols": [json.dumps([first, False])],
        "row_limit": limit,
        "server_pagination": False,
        "table_timestamp_format": "smart_date",
        "column_config": {column: {"d3NumberFormat": f} for column, f in (number_formats or {}).items()},
    }
    query: dict[str, Any] = {"columns": columns, "orderby": [[first, False]], "row_limit": limit}
    if only is not None:
        column, values = only
        form["adhoc_filters"] = [
            {
                "clause": "WHERE",
                "expressionType": "SQL",
                "sqlExpression": f"{column} IN {in_list(values)}",
                "subject": None,
                "comparator": None,
            }
        ]
        query["filters"] = [{"col": column, "op": "IN", "val": list(values)}]
    return Chart(name, "table", dataset, form=form, query=query, width=width)


RUNS_PER_DAY = per_day(
    "Runs per day by status",
    RUN_COUNTS,
    metric="runs",
    by=["status"],
    width=8,
    x_axis_title="Day",
    y_axis_title="Runs",
    x_axis_title_margin=30,  # what Superset's editor sets with a title: 0 draws it over the ticks
    y_axis_title_margin=30,
)
SUCCESS_RATE = big_number(
    "Success rate", RUN_COUNTS, metric="success_rate", number_format=".1%", subheader="of ended runs"
)
DURATION_BY_NOTEBOOK = rows_table(
    "Duration by notebook (p50, p95) — slowest first",
    NOTEBOOK_DURATIONS,
    columns=["notebook", "p50_seconds", "p95_seconds", "timed_runs"],
    first="p95_seconds",
    limit=50,
    number_formats={"p50_seconds": ",.2f", "p95_seconds": ",.2f"},
    width=6,
)
MOST_FAILING = summary_table(
    "Most failing notebooks",
    RUN_COUNTS,
    by="notebook",
    metrics=["failures", "failure_rate", "runs"],
    order="failures",
    limit=20,
)
RECENT_FAILURES = rows_table(
    "Recent failures",
    RUNS,
    columns=[
        "queued_at",
        "notebook",
        "username",
        "status",
        "error_cell_index",
        "error_ename",
        "error_evalue",
        "error_cell_source",
    ],
    first="queued_at",
    limit=50,
    only=("status", FAILURES),
)

RESULTS_OVER_TIME = per_day(
    "Recorded results over time",
    RESULT_TRENDS,
    metric="mean_value",
    by=["notebook", "result"],
    line=True,
    width=12,
)
RESULTS_AGAINST_PARAMETERS = rows_table(
    "Results against the run's parameters",
    RESULTS,
    columns=["recorded_at", "notebook", "execution_id", "result", "value", "parameters", "username"],
    first="execution_id",
    limit=500,
)

RUNS_BY_USER = summary_table(
    "Runs and run time by user",
    RUN_COUNTS,
    by="username",
    metrics=["runs", "run_time_hours", "failures"],
    order="runs",
    limit=100,
)
RUN_TIME_BY_USER = per_day("Run time per day by user", RUN_COUNTS, metric="run_time_hours", by=["username"])
RUNS_BY_GROUP = summary_table(
    "Runs and run time by group",
    RUN_GROUPS,
    by="group_name",
    metrics=["runs", "run_time_hours"],
    order="runs",
    limit=100,
)
RUN_TIME_BY_GROUP = per_day(
    "Run time per day by group", RUN_GROUPS, metric="run_time_hours", by=["group_name"]
)


# --- dashboards --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dashboard:
    title: str
    slug: str
    description: str
    rows: tuple[tuple[Chart, ...], ...]
    charts: tuple[Chart, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "charts", tuple(c for row in self.rows for c in row))

    @property
    def uuid(self) -> str:
        return fixed_uuid("dashboard", self.slug)

    def position(self) -> dict[str, Any]:
        position: dict[str, Any] = {
            "DASHBOARD_VERSION_KEY": "v2",
            "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
            "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
            "HEADER_ID": {"id": "HEADER_ID", "type": "HEADER", "meta": {"text": self.title}},
        }
        for r, row in enumerate(self.rows, start=1):
            row_id = f"ROW-{r}"
            position["GRID_ID"]["children"].append(row_id)
            position[row_id] = {
                "type": "ROW",
                "id": row_id,
                "children": [],
                "parents": ["ROOT_ID", "GRID_ID"],
                "meta": {"background": "BACKGROUND_TRANSPARENT"},
            }
            for c, chart in enumerate(row, start=1):
                chart_id = f"CHART-{r}-{c}"
                position[row_id]["children"].append(chart_id)
                position[chart_id] = {
                    "type": "CHART",
                    "id": chart_id,
                    "children": [],
                    "parents": ["ROOT_ID", "GRID_ID", row_id],
                    "meta": {
                        "chartId": 0,  # rewritten to the imported chart's id by the import
                        "uuid": chart.uuid,
                        "sliceName": chart.name,
                        "width": chart.width,
                        "height": chart.height,
                    },
                }
        return position

    def yaml(self) -> dict[str, Any]:
        return {
            "dashboard_title": self.title,
            "description": None,
            "css": "",
            "slug": self.slug,
            "certified_by": None,
            "certification_details": None,
            "published": True,
            "uuid": self.uuid,
            "position": self.position(),
            "metadata": {
                "color_scheme": "supersetColors",
                "refresh_frequency": 0,
                "expanded_slices": {},
                "label_colors": {},
                "shared_label_colors": [],
                "color_scheme_domain": [],
                "timed_refresh_immune_slices": [],
                "cross_filters_enabled": True,
                "default_filters": "{}",
                "chart_configuration": {},
                "native_filter_configuration": [],
            },
            "version": VERSION,
        }


DASHBOARDS = (
    Dashboard(
        "Runs",
        "nbp-runs",
        "Runs per day, success rate, durations, the slowest and most failing notebooks, recent failures.",
        ((RUNS_PER_DAY, SUCCESS_RATE), (DURATION_BY_NOTEBOOK, MOST_FAILING), (RECENT_FAILURES,)),
    ),
    Dashboard(
        "Experiments",
        "nbp-experiments",
        "What runs recorded (nbp.record) by notebook over time, and against each run's parameters.",
        ((RESULTS_OVER_TIME,), (RESULTS_AGAINST_PARAMETERS,)),
    ),
    Dashboard(
        "Usage",
        "nbp-usage",
        "Runs and run time by user and by group (the owner's realm groups when the run was submitted).",
        ((RUNS_BY_USER, RUN_TIME_BY_USER), (RUNS_BY_GROUP, RUN_TIME_BY_GROUP)),
    ),
)


# --- the bundle --------------------------------------------------------------------------------------


def database_yaml(sqlalchemy_uri: str) -> dict[str, Any]:
    """The connection (its password masked: the import takes it separately, ``passwords``)."""
    return {
        "database_name": DATABASE_NAME,
        "sqlalchemy_uri": sqlalchemy_uri,
        "cache_timeout": None,
        "expose_in_sqllab": True,
        "allow_run_async": False,
        "allow_ctas": False,
        "allow_cvas": False,
        "allow_dml": False,
        "allow_file_upload": False,
        "extra": {"allows_virtual_table_explore": True},
        "uuid": DATABASE_UUID,
        "version": VERSION,
    }


def file_name(kind: str, name: str) -> str:
    safe = "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")
    return f"{kind}/{safe}.yaml"


def bundle(masked_uri: str) -> dict[str, str]:
    """Every file of the import bundle, by its path inside the bundle's folder."""
    documents: dict[str, dict[str, Any]] = {
        "metadata.yaml": {"version": VERSION, "type": "assets", "timestamp": "2026-12-01T00:00:00+00:00"},
        DATABASE_FILE: database_yaml(masked_uri),
    }
    for dataset in DATASETS:
        documents[file_name("datasets/platform_history", dataset.name)] = dataset.yaml()
    for dashboard in DASHBOARDS:
        documents[file_name("dashboards", dashboard.slug)] = dashboard.yaml()
        for chart in dashboard.charts:
            documents[file_name("charts", chart.name)] = chart.yaml()
    return {path: yaml.safe_dump(doc, sort_keys=False, allow_unicode=True) for path, doc in documents.items()}
