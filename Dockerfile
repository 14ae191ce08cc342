# syntax=docker/dockerfile:1
# Chorus node image: `docker build -t chorus .` (docs/operations.md, "Docker").
#
# Stage 1 builds the wheels of Chorus and of every dependency (compilers live
# here only); stage 2 installs them into a slim Python with no build tools, as a
# non-root user. Checked by tests/ops/test_dockerfile.py.

FROM python:3.11-slim-bookworm AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY chorus ./chorus
# With the sentry extra: setting CHORUS_SENTRY_DSN is then enough (docs/operations.md).
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[sentry]'

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CHORUS_HTTP_HOST=0.0.0.0 \
    CHORUS_GATEWAY_HOST=0.0.0.0 \
    CHORUS_DATA_DIR=/var/lib/chorus \
    CHORUS_LOG_FORMAT=json
COPY --from=builder /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels 'chorus[sentry]' \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /var/lib/chorus --create-home chorus
USER 10001:10001
WORKDIR /var/lib/chorus
VOLUME ["/var/lib/chorus"]
EXPOSE 8080 8081
# /healthz on the HTTP port (role all or api) or on the gateway port (role gateway):
# whichever answers (ports from CHORUS_HTTP_PORT / CHORUS_GATEWAY_PORT). Python, not
# curl: the slim image has no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u\nfor key, port in ((\"CHORUS_HTTP_PORT\", \"8080\"), (\"CHORUS_GATEWAY_PORT\", \"8081\")):\n    try:\n        u.urlopen(\"http://127.0.0.1:%s/healthz\" % os.environ.get(key, port), timeout=2)\n        sys.exit(0)\n    except OSError:\n        pass\nsys.exit(1)"]
# Exec form: `chorus` is PID 1 and gets SIGTERM itself (graceful drain, shutdown_grace).
ENTRYPOINT ["chorus"]
CMD ["serve"]
