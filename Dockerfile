# Atrium API server and inference worker image.
# Built with the README's install command; torch comes from the CPU wheel index first so that
# `pip install -e .` finds `torch==2.13.0` already satisfied (GPU hosts: a CUDA base and wheel).
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
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

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
