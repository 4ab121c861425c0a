"""The intake of a run: paths in the user's folder, parameters, the notebook file itself -- every check
before anything is queued."""
