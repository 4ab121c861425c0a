"""The notebook and parameter registry."""
