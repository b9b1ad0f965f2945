"""Airflow's `[core] hostname_callable`: the name a task instance records as the host that ran it.

Airflow 3 stores each task instance's `hostname` from this callable (default: the machine's FQDN). Two
Celery workers on one machine would both record the same FQDN, so each worker is started with its own
AIRFLOW_HOSTNAME (scripts/prod.sh: `worker-1`, `worker-2`); without it, the FQDN as Airflow's default.
Set with AIRFLOW__CORE__HOSTNAME_CALLABLE=services.core.airflow_hostname.hostname (deploy/airflow/airflow.env).
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    """AIRFLOW_HOSTNAME when set, else the fully qualified domain name (Airflow's default)."""
    return os.environ.get("AIRFLOW_HOSTNAME") or socket.getfqdn()
