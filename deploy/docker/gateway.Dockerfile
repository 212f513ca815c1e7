# The gateway image: NGINX + Gunicorn (Flask) under supervisord, no R. R models run in their
# own pods (deploy/docker/r-worker.Dockerfile) that the gateway reaches by Service name.
# Build from the repository root: docker build -f deploy/docker/gateway.Dockerfile -t gateway .
FROM debian:bookworm-slim

# The Debian packages the Makefile installs for the gateway side (Python, NGINX).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv nginx-light ca-certificates \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --uid 10001 --user-group --create-home gateway
WORKDIR /opt/gateway
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN python3 -m venv /opt/gateway/.venv \
 && /opt/gateway/.venv/bin/pip install --no-cache-dir /opt/gateway
ENV PATH=/opt/gateway/.venv/bin:$PATH

# Non-root: NGINX listens on 8080 and keeps its pid and temp files in the run directory.
USER gateway
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"
ENTRYPOINT ["gateway"]
CMD ["up", "--exec", "--config", "/etc/gateway/gateway.toml"]
