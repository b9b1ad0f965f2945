"""Training host: a package per capability, each with the steps.py that the DAG calls."""
