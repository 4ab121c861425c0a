"""notebook-platform's SDK: see :mod:`nbp.client.api`."""

from nbp.client.api import AsyncClient, Client, token_claims
from nbp.client.credentials import CredentialStore, StoredLogin
from nbp.client.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    NbpError,
    NotFound,
    SignInError,
    Unauthorized,
    Unavailable,
)
from nbp.client.models import TERMINAL, Execution, Notebook, Parameter, Run

__all__ = [
    "TERMINAL",
    "AsyncClient",
    "BadRequest",
    "Client",
    "Conflict",
    "CredentialStore",
    "Execution",
    "Forbidden",
    "Invalid",
    "NbpError",
    "NotFound",
    "Notebook",
    "Parameter",
    "Run",
    "SignInError",
    "StoredLogin",
    "Unauthorized",
    "Unavailable",
    "token_claims",
]
