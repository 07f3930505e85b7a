# Atrium API server and inference worker image.
# Built with the README's install command; torch is installed first so that `pip install -e .`
# finds `torch==2.13.0` already satisfied. TORCH_INDEX_URL names a package index that serves the
# CPU build of torch (PyTorch publishes one; a plain index gives the multi-GB CUDA wheel):
#   docker build --build-arg TORCH_INDEX_URL=<cpu wheel index> .
# GPU hosts: a CUDA base image and the CUDA wheel.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ATRIUM_DATA_DIR=/data

RUN apt-get update \
    && apt-get install -y --no-install-recommends git git-lfs curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/atrium
ARG TORCH_INDEX_URL=""
RUN pip install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} torch==2.13.0

COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
# Editable, as in the README: migrations/ and alembic.ini stay beside the package.
RUN pip install -e . \
    && useradd --system --create-home --uid 10001 atrium \
    && mkdir -p /data \
    && chown atrium /data

USER atrium
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/health || exit 1
CMD ["atrium", "serve", "--host", "0.0.0.0", "--port", "8000"]
