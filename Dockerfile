# syntax=docker/dockerfile:1.7
# Three images from one file:
#   docker build --target train -t movie-intel/train .   Airflow 3.3 with the project installed
#   docker build --target serve -t movie-intel/serve .   the FastAPI prediction service
#   docker build --target ui    -t movie-intel/ui    .   the Streamlit app
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11

# ---------------------------------------------------------------------------------------------
# Training host: the official Airflow image, the project installed into it (not through
# _PIP_ADDITIONAL_REQUIREMENTS, which reinstalls at every container start).
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION} AS train
USER root
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
USER airflow
WORKDIR /opt/movie-intel
# CPU-only torch first, so nothing pulls the CUDA build.
RUN pip install --no-cache-dir "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
COPY --chown=airflow:root pyproject.toml README.md ./
COPY --chown=airflow:root services ./services
RUN pip install --no-cache-dir ".[train]" "apache-airflow==${AIRFLOW_VERSION}"
COPY --chown=airflow:root data/snapshot ./data/snapshot
COPY --chown=airflow:root dags /opt/airflow/dags
ARG GIT_COMMIT=unknown
ENV SNAPSHOT_DIR=/opt/movie-intel/data/snapshot \
    GIT_COMMIT=${GIT_COMMIT} \
    WANDB_DIR=/opt/airflow/wandb

# ---------------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime-base
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 app
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1

# Serving host: pulls the production models from S3 at start-up (nothing baked into the image).
FROM runtime-base AS serve
RUN pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY services ./services
RUN pip install ".[serve]"
USER app
# The event spool holds acknowledged events until S3 has them: its own volume per container (compose).
# Made here, as the app user, so a fresh volume mounted on it starts with the right owner.
RUN mkdir -p /home/app/model-cache /home/app/spool
ENV MODEL_CACHE_DIR=/home/app/model-cache SPOOL_DIR=/home/app/spool
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/ready || exit 1
CMD ["uvicorn", "services.serve.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000", "--no-server-header"]

# UI: talks to the API over HTTP only.
FROM runtime-base AS ui
COPY pyproject.toml README.md ./
COPY services ./services
RUN pip install ".[ui]"
USER app
EXPOSE 8501
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8501/_stcore/health || exit 1
CMD ["streamlit", "run", "services/ui/app.py", "--server.address=0.0.0.0", "--server.port=8501", \
     "--server.headless=true", "--browser.gatherUsageStats=false", "--client.toolbarMode=minimal"]
