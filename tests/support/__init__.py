"""Test support shared by the repository's tests (pytest plugins named in the root conftest)."""
