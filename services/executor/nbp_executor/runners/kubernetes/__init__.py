"""``kubernetes``: each run is a pod of its own that runs Papermill (``runner.KubernetesRunner``), made
from ``pod.run_pod``; its progress and output come back through the owner's folder (``output``).
This package's import is light: the Kubernetes client is imported only by ``runner``."""
