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
TERMINAL_FAILURES = "('failed', 'timed_out')"
FINISHED = "('completed', 'failed', 'cancelled', 'timed_out')"


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
    main_dttm_col: str
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


COUNT = Metric("runs", "COUNT(*)", "Runs")
RUN_TIME_HOURS = Metric("run_time_hours", "SUM(execution_time_seconds) / 3600.0", "Run time (hours)", ".2f")

RUNS = Dataset(
    name="notebook_executions",
    description="Every run of every notebook (history.notebook_executions), one row per run.",
    main_dttm_col="queued_at",
    columns=(
        Column("id", "BIGINT"),
        Column("notebook_id", "BIGINT"),
        Column("notebook_name", "VARCHAR(255)"),
        Column("input_path", "VARCHAR(2048)"),
        Column(
            "notebook",
            "VARCHAR",
            expression="COALESCE(notebook_name, input_path)",
            label="Notebook",
        ),
        Column("username", "VARCHAR(255)", label="User"),
        Column("status", "VARCHAR(16)", label="Status"),
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
    metrics=(
        COUNT,
        Metric(
            "success_rate",
            f"COUNT(*) FILTER (WHERE status = 'completed')::float "
            f"/ NULLIF(COUNT(*) FILTER (WHERE status IN {FINISHED}), 0)",
            "Success rate",
            ".1%",
        ),
        Metric(
            "failures",
            f"COUNT(*) FILTER (WHERE status IN {TERMINAL_FAILURES})",
            "Failures (failed, timed out)",
        ),
        Metric(
            "failure_rate",
            f"COUNT(*) FILTER (WHERE status IN {TERMINAL_FAILURES})::float "
            f"/ NULLIF(COUNT(*) FILTER (WHERE status IN {FINISHED}), 0)",
            "Failure rate",
            ".1%",
        ),
        Metric(
            "p50_seconds",
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY execution_time_seconds)",
            "p50 duration (s)",
            ".2f",
        ),
        Metric(
            "p95_seconds",
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY execution_time_seconds)",
            "p95 duration (s)",
            ".2f",
        ),
        RUN_TIME_HOURS,
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
        "JOIN history.notebook_executions AS e ON e.id = r.execution_id\n"
        "WHERE r.value_numeric IS NOT NULL"
    ),
    columns=(
        Column("execution_id", "BIGINT", label="Run"),
        Column("result", "VARCHAR(255)", label="Result"),
        Column("value", "DOUBLE PRECISION", label="Value"),
        Column("recorded_at", "TIMESTAMP WITH TIME ZONE", is_dttm=True, label="Recorded at"),
        Column("notebook", "VARCHAR", label="Notebook"),
        Column("notebook_id", "BIGINT"),
        Column("username", "VARCHAR(255)", label="User"),
        Column("status", "VARCHAR(16)"),
        Column("queued_at", "TIMESTAMP WITH TIME ZONE", is_dttm=True),
        Column("parameters", "TEXT", label="Parameters"),
    ),
    metrics=(
        Metric("mean_value", "AVG(value)", "Mean value", ".4g"),
        Metric("results", "COUNT(*)", "Results"),
    ),
)

RUN_GROUPS = Dataset(
    name="run_groups",
    description=(
        "Each run once for every realm group its owner was in when it was submitted (owner_groups); "
        "'(no group)' for an owner in none. A run of an owner in two groups counts in both."
    ),
    main_dttm_col="queued_at",
    sql=(
        "SELECT e.id AS execution_id, g.name AS group_name, e.username, e.status, e.queued_at,\n"
        "       e.execution_time_seconds\n"
        "FROM history.notebook_executions AS e\n"
        "CROSS JOIN LATERAL jsonb_array_elements_text(\n"
        "    CASE WHEN jsonb_array_length(e.owner_groups) = 0 THEN '[\"(no group)\"]'::jsonb\n"
        "         ELSE e.owner_groups END) AS g(name)"
    ),
    columns=(
        Column("execution_id", "BIGINT", label="Run"),
        Column("group_name", "VARCHAR", label="Group"),
        Column("username", "VARCHAR(255)", label="User"),
        Column("status", "VARCHAR(16)", label="Status"),
        Column("queued_at", "TIMESTAMP WITH TIME ZONE", is_dttm=True, label="Queued at"),
        Column("execution_time_seconds", "DOUBLE PRECISION", label="Duration (s)"),
    ),
    metrics=(COUNT, RUN_TIME_HOURS),
)

DATASETS = (RUNS, RESULTS, RUN_GROUPS)


# --- charts ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chart:
    """One chart: ``form`` is the explore form (params) beyond the common keys; ``query`` the query the
    chart data API runs for it (columns, metrics, orderby, row_limit, filters)."""

    name: str
    viz_type: str
    dataset: Dataset
    form: dict[str, Any]
    query: dict[str, Any]
    description: str | None = None
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
            "description": self.description,
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


def day_axis(column: str) -> dict[str, Any]:
    """A time column bucketed by day, as the x axis of a time-series chart."""
    return {
        "timeGrain": "P1D",
        "columnType": "BASE_AXIS",
        "sqlExpression": column,
        "label": column,
        "expressionType": "SQL",
    }


def where(sql: str) -> dict[str, Any]:
    return {
        "clause": "WHERE",
        "expressionType": "SQL",
        "sqlExpression": sql,
        "subject": None,
        "comparator": None,
    }


def table_form(*, groupby: list[str], metrics: list[str], order: str, limit: int) -> dict[str, Any]:
    return {
        "query_mode": "aggregate",
        "groupby": groupby,
        "metrics": metrics,
        "all_columns": [],
        "percent_metrics": [],
        "timeseries_limit_metric": order,
        "order_desc": True,
        "row_limit": limit,
        "server_pagination": False,
        "table_timestamp_format": "smart_date",
        "show_cell_bars": True,
    }


RUNS_PER_DAY = Chart(
    "Runs per day by status",
    "echarts_timeseries_bar",
    RUNS,
    form={
        "x_axis": "queued_at",
        "time_grain_sqla": "P1D",
        "metrics": ["runs"],
        "groupby": ["status"],
        "stack": "Stack",
        "row_limit": 10000,
        "show_legend": True,
        "x_axis_title": "Day",
        "y_axis_title": "Runs",
    },
    query={"columns": [day_axis("queued_at"), "status"], "metrics": ["runs"], "row_limit": 10000},
    width=8,
)
SUCCESS_RATE = Chart(
    "Success rate",
    "big_number_total",
    RUNS,
    form={"metric": "success_rate", "y_axis_format": ".1%", "subheader": "of finished runs"},
    query={"metrics": ["success_rate"]},
    width=4,
)
DURATION_BY_NOTEBOOK = Chart(
    "Duration by notebook (p50, p95) — slowest first",
    "table",
    RUNS,
    form=table_form(
        groupby=["notebook"], metrics=["p50_seconds", "p95_seconds", "runs"], order="p95_seconds", limit=50
    ),
    query={
        "columns": ["notebook"],
        "metrics": ["p50_seconds", "p95_seconds", "runs"],
        "orderby": [["p95_seconds", False]],
        "row_limit": 50,
    },
)
MOST_FAILING = Chart(
    "Most failing notebooks",
    "table",
    RUNS,
    form=table_form(
        groupby=["notebook"], metrics=["failures", "failure_rate", "runs"], order="failures", limit=20
    ),
    query={
        "columns": ["notebook"],
        "metrics": ["failures", "failure_rate", "runs"],
        "orderby": [["failures", False]],
        "row_limit": 20,
    },
)
RECENT_FAILURES_COLUMNS = [
    "queued_at",
    "notebook",
    "username",
    "status",
    "error_cell_index",
    "error_ename",
    "error_evalue",
    "error_cell_source",
]
RECENT_FAILURES = Chart(
    "Recent failures",
    "table",
    RUNS,
    form={
        "query_mode": "raw",
        "all_columns": RECENT_FAILURES_COLUMNS,
        "groupby": [],
        "metrics": [],
        "order_by_cols": [json.dumps(["queued_at", False])],
        "row_limit": 50,
        "server_pagination": False,
        "table_timestamp_format": "smart_date",
        "adhoc_filters": [where(f"status IN {TERMINAL_FAILURES}")],
    },
    query={
        "columns": RECENT_FAILURES_COLUMNS,
        "orderby": [["queued_at", False]],
        "row_limit": 50,
        "filters": [{"col": "status", "op": "IN", "val": ["failed", "timed_out"]}],
    },
    width=12,
)

RESULTS_OVER_TIME = Chart(
    "Recorded results over time",
    "echarts_timeseries_line",
    RESULTS,
    form={
        "x_axis": "recorded_at",
        "time_grain_sqla": "P1D",
        "metrics": ["mean_value"],
        "groupby": ["notebook", "result"],
        "row_limit": 10000,
        "show_legend": True,
        "markerEnabled": True,
    },
    query={
        "columns": [day_axis("recorded_at"), "notebook", "result"],
        "metrics": ["mean_value"],
        "row_limit": 10000,
    },
    width=12,
)
RESULTS_AGAINST_PARAMETERS_COLUMNS = [
    "recorded_at",
    "notebook",
    "execution_id",
    "result",
    "value",
    "parameters",
    "username",
]
RESULTS_AGAINST_PARAMETERS = Chart(
    "Results against the run's parameters",
    "table",
    RESULTS,
    form={
        "query_mode": "raw",
        "all_columns": RESULTS_AGAINST_PARAMETERS_COLUMNS,
        "groupby": [],
        "metrics": [],
        "order_by_cols": [json.dumps(["recorded_at", False])],
        "row_limit": 500,
        "server_pagination": False,
        "table_timestamp_format": "smart_date",
    },
    query={
        "columns": RESULTS_AGAINST_PARAMETERS_COLUMNS,
        "orderby": [["recorded_at", False]],
        "row_limit": 500,
    },
    width=12,
)

RUNS_BY_USER = Chart(
    "Runs and run time by user",
    "table",
    RUNS,
    form=table_form(
        groupby=["username"], metrics=["runs", "run_time_hours", "failures"], order="runs", limit=100
    ),
    query={
        "columns": ["username"],
        "metrics": ["runs", "run_time_hours", "failures"],
        "orderby": [["runs", False]],
        "row_limit": 100,
    },
)
RUN_TIME_BY_USER = Chart(
    "Run time per day by user",
    "echarts_timeseries_bar",
    RUNS,
    form={
        "x_axis": "queued_at",
        "time_grain_sqla": "P1D",
        "metrics": ["run_time_hours"],
        "groupby": ["username"],
        "stack": "Stack",
        "row_limit": 10000,
        "show_legend": True,
    },
    query={"columns": [day_axis("queued_at"), "username"], "metrics": ["run_time_hours"], "row_limit": 10000},
)


RUNS_BY_GROUP = Chart(
    "Runs and run time by group",
    "table",
    RUN_GROUPS,
    form=table_form(groupby=["group_name"], metrics=["runs", "run_time_hours"], order="runs", limit=100),
    query={
        "columns": ["group_name"],
        "metrics": ["runs", "run_time_hours"],
        "orderby": [["runs", False]],
        "row_limit": 100,
    },
)
RUN_TIME_BY_GROUP = Chart(
    "Run time per day by group",
    "echarts_timeseries_bar",
    RUN_GROUPS,
    form={
        "x_axis": "queued_at",
        "time_grain_sqla": "P1D",
        "metrics": ["run_time_hours"],
        "groupby": ["group_name"],
        "stack": "Stack",
        "row_limit": 10000,
        "show_legend": True,
    },
    query={
        "columns": [day_axis("queued_at"), "group_name"],
        "metrics": ["run_time_hours"],
        "row_limit": 10000,
    },
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
