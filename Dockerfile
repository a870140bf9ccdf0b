# kalshi-platform: the ticker plant and its CLIs (`kalshi-platform ...`) in a slim, non-root image.
#   docker build -t kalshi-platform .
#   docker run --rm kalshi-platform --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# non-root user; /data holds the embedded store, the QuestDB spool and the historical tier
RUN groupadd --system --gid 10001 kalshi \
 && useradd --system --uid 10001 --gid kalshi --home-dir /app --shell /usr/sbin/nologin kalshi \
 && mkdir -p /app /data/store /data/spool /data/hdb /keys \
 && chown -R kalshi:kalshi /app /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY kalshi_platform ./kalshi_platform
RUN pip install --no-compile . && rm -rf /root/.cache
COPY --chmod=0755 docker/eod-daily.sh /usr/local/bin/eod-daily.sh
COPY data/recordings ./data/recordings
COPY data/PROVENANCE.md ./data/PROVENANCE.md

USER kalshi
ENV KALSHI_STORE_DIR=/data/store \
    KALSHI_QUESTDB_SPOOL_DIR=/data/spool \
    KALSHI_HDB_DIR=/data/hdb
VOLUME ["/data"]
ENTRYPOINT ["kalshi-platform"]
CMD ["--help"]
