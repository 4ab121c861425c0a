"""The executor's fixtures live in ``nbp_executor.testing`` (importable by the tests and the bench)."""

from nbp_executor.testing import executor_workspace, monkeypatch_module, notebook, platform

__all__ = ["executor_workspace", "monkeypatch_module", "notebook", "platform"]
