"""The baseline: the registry's two hot endpoints written the way the seed wrote them.

Sync ``def`` handlers (FastAPI runs them in its thread pool), a sync SQLAlchemy session per request over
psycopg2, ORM objects serialized by FastAPI. Run with one uvicorn worker. Same tables as ours.
"""

import os
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from nbp_registry.models import Notebook, Parameter
from pydantic import BaseModel
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

engine = create_engine(os.environ["BENCH_PSYCOPG2_URL"])
SessionLocal = sessionmaker(bind=engine)
app = FastAPI()


class NotebookIn(BaseModel):
    name: str
    description: str | None = None
    file_path: str
    username: str
    tags: list[str] = []
    metadata: dict[str, Any] = {}


def get_db() -> Any:
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


def as_dict(notebook: Notebook, parameters: list[Parameter] | None = None) -> dict[str, Any]:
    body = {
        "id": notebook.id,
        "name": notebook.name,
        "description": notebook.description,
        "file_path": notebook.file_path,
        "username": notebook.username,
        "tags": notebook.tags,
        "metadata": notebook.metadata_,
        "created_at": notebook.created_at,
        "updated_at": notebook.updated_at,
    }
    if parameters is not None:
        body["parameters"] = [{c.key: getattr(p, c.key) for c in p.__table__.columns} for p in parameters]
    return body


@app.get("/db/notebooks/{notebook_id}")
def get_notebook(notebook_id: int, db: Session = Depends(get_db)) -> dict[str, Any]:
    notebook = db.get(Notebook, notebook_id)
    if notebook is None:
        raise HTTPException(404, "Notebook not found")
    parameters = db.query(Parameter).filter_by(notebook_id=notebook_id).order_by(Parameter.id).all()
    return as_dict(notebook, parameters)


@app.post("/db/notebooks", status_code=201)
def create_notebook(body: NotebookIn, db: Session = Depends(get_db)) -> dict[str, Any]:
    values = body.model_dump()
    notebook = Notebook(**{("metadata_" if k == "metadata" else k): v for k, v in values.items()})
    db.add(notebook)
    db.commit()
    db.refresh(notebook)
    return as_dict(notebook)
