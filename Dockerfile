# Gatewatch image: the pinned dependencies, then the package, run as an unprivileged user.
FROM python:3.11-slim
# The OWASP Core Rule Set for the payload stage (libmodsecurity comes as a wheel).
RUN apt-get update && apt-get install -y --no-install-recommends modsecurity-crs \
    && rm -rf /var/lib/apt/lists/*
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY gatewatch ./gatewatch
COPY ingest ./ingest
COPY detectors ./detectors
COPY alerts ./alerts
COPY dashboard ./dashboard
RUN pip install -c constraints.txt . \
    && useradd --system --uid 10001 --home-dir /var/lib/gatewatch gatewatch \
    && mkdir -p /var/lib/gatewatch && chown gatewatch /var/lib/gatewatch
USER gatewatch
ENV GATEWATCH_DATA_DIR=/var/lib/gatewatch
ENTRYPOINT ["gatewatch"]
CMD ["--help"]
