"""notebook-platform executor: the run queue, its workers, and Papermill runs in fresh warm kernels."""
