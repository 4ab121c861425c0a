# syntax=docker/dockerfile:1.7
#
# notebook-platform images, one target per service:
#
#   docker build --target registry -t notebook-platform/registry:0.1.0 .
#   docker build --target executor -t notebook-platform/executor:0.1.0 .
#   docker build --target history  -t notebook-platform/history:0.1.0 .
#   docker build --target superset -t notebook-platform/superset:0.1.0 .   (superset-auth/requirements.lock)
#   docker build --target notebook -t notebook-platform/notebook:0.1.0 .   (JupyterHub's servers, the run pods)
#
# (`make images` builds them all.) Each service gets a virtualenv built from the workspace lockfile
# (uv.lock, `uv sync --frozen`) holding its own package and dependencies only, copied into a slim
# runtime that runs as an unprivileged user and writes nowhere but /tmp (and, for the executor, the
# workspace volume).

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm
# The notebook image's base: Jupyter's scipy-notebook at a date tag (docker-stacks never moves one).
ARG NOTEBOOK_BASE_IMAGE=quay.io/jupyter/scipy-notebook:2025-03-14

# --- build: uv from PyPI, then one venv per service -----------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ARG UV_VERSION=0.13.9
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src

# The sources are bind-mounted (rw: the build may write, nothing persists); `--no-editable` installs the
# workspace packages into the venv so it needs no source at run time.
FROM builder AS build-registry
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=pyproject.toml,target=/src/pyproject.toml \
    --mount=type=bind,source=uv.lock,target=/src/uv.lock \
    --mount=type=bind,source=services,target=/src/services,rw \
    uv sync --frozen --no-dev --no-editable --package nbp-registry

FROM builder AS build-history
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=pyproject.toml,target=/src/pyproject.toml \
    --mount=type=bind,source=uv.lock,target=/src/uv.lock \
    --mount=type=bind,source=services,target=/src/services,rw \
    uv sync --frozen --no-dev --no-editable --package nbp-history

# The executor runs users' notebooks: it carries the single-user image's scientific stack. The stack
# comes from the lockfile like everything else (nbp-executor's dependencies or extras); the import check
# fails the build if it is missing.
FROM builder AS build-executor
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=pyproject.toml,target=/src/pyproject.toml \
    --mount=type=bind,source=uv.lock,target=/src/uv.lock \
    --mount=type=bind,source=services,target=/src/services,rw \
    uv sync --frozen --no-dev --no-editable --all-extras --package nbp-executor \
 && /app/.venv/bin/python -c "import ipykernel, matplotlib, numpy, pandas, papermill, sklearn"

# --- runtime --------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 nbp \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin nbp
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /app
EXPOSE 8000
USER 10001:10001

FROM runtime AS registry
COPY --from=build-registry /app/.venv /app/.venv
CMD ["nbp-registry", "serve", "--host", "0.0.0.0", "--port", "8000"]

FROM runtime AS history
COPY --from=build-history /app/.venv /app/.venv
CMD ["nbp-history", "serve", "--host", "0.0.0.0", "--port", "8000"]

FROM runtime AS executor
# Kernels, IPython and matplotlib keep their runtime files under /tmp (the root filesystem is read-only
# in the cluster); the user may be any uid (the chart runs it as the notebook user), so no home is assumed.
ENV HOME=/tmp \
    USER=executor \
    JUPYTER_RUNTIME_DIR=/tmp/jupyter/runtime \
    JUPYTER_DATA_DIR=/tmp/jupyter/data \
    IPYTHONDIR=/tmp/ipython \
    MPLCONFIGDIR=/tmp/matplotlib \
    NBP_WORKSPACE=/workspace
COPY --from=build-executor /app/.venv /app/.venv
CMD ["nbp-executor", "serve", "--host", "0.0.0.0", "--port", "8000"]

# --- Superset: exactly superset-auth/requirements.lock (Superset 6.1, Authlib, psycopg2) ---------------
# Its own environment: it pins SQLAlchemy < 2 and cannot share the services' lockfile. Configuration and
# dashboards are not baked in: the chart mounts superset-auth/*.py (SUPERSET_CONFIG_PATH points there).
FROM builder AS build-superset
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=superset-auth/requirements.lock,target=/src/requirements.lock \
    uv venv /app/.venv \
 && uv pip sync --python /app/.venv/bin/python /src/requirements.lock \
 && /app/.venv/bin/python -c "import authlib, psycopg2, superset"

FROM runtime AS superset
ENV HOME=/tmp \
    SUPERSET_HOME=/tmp/superset-home \
    SUPERSET_CONFIG_PATH=/opt/nbp/superset-auth/superset_config.py
COPY --from=build-superset /app/.venv /app/.venv
EXPOSE 8088
CMD ["gunicorn", "--bind=0.0.0.0:8088", "--worker-class=gthread", "--threads=8", "superset.app:create_app()"]

# --- notebook: the users' image (JupyterHub's single-user servers and the executor's run pods) -------------
# Jupyter's scipy-notebook (JupyterLab, the scientific stack, jupyterhub-singleuser) plus what the platform
# adds: the `nbp` package with its client (SDK and command line: a notebook registers and runs itself) and
# Papermill (the executor's run pods start it with this image's `python`). Pinned to the lockfile: the
# build stage exports every locked version as pip constraints, so whatever the install pulls in (or
# replaces in the base's conda environment) is the version the tests ran with. The run pods' read-only
# root filesystem needs nothing of the image written at run time (the runner points Jupyter's and
# IPython's runtime folders at /tmp).
FROM builder AS build-notebook
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=pyproject.toml,target=/src/pyproject.toml \
    --mount=type=bind,source=uv.lock,target=/src/uv.lock \
    --mount=type=bind,source=services,target=/src/services,rw \
    mkdir -p /out \
 && uv export --frozen --no-dev --no-hashes --all-packages --all-extras --no-emit-workspace \
      -o /out/constraints.txt \
 && uv build --wheel --package nbp-kernel -o /out

FROM ${NOTEBOOK_BASE_IMAGE} AS notebook
# The base runs as its notebook user (jovyan, uid 1000, group 100), who owns the conda environment.
RUN --mount=type=bind,from=build-notebook,source=/out,target=/tmp/nbp-install \
    pip install --no-cache-dir --constraint /tmp/nbp-install/constraints.txt \
      "$(echo /tmp/nbp-install/nbp_kernel-*.whl)[client]" papermill \
 && python -c "import ipykernel, nbp.client, papermill" \
 && nbp --help >/dev/null \
 && fix-permissions "${CONDA_DIR}" \
 && fix-permissions "/home/${NB_USER}"
