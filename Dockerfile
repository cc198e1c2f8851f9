# One image for the broker and every node; the command chooses which runs.
#
# The first stage builds the wheel; the second installs that wheel alone (with its
# dependencies) into a virtual environment, so the image runs exactly what an install
# from the wheel runs: no source tree, no editable install. It runs as an unprivileged
# user, and Docker asks the gRPC health service of the broker or node it runs.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY nodes ./nodes
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:3.11-slim
ENV PATH=/opt/gateway/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /dist /tmp/dist
RUN python -m venv /opt/gateway \
 && /opt/gateway/bin/pip install --no-cache-dir /tmp/dist/*.whl \
 && rm -rf /tmp/dist \
 && useradd --create-home --uid 10001 gateway \
 && mkdir -p /var/gateway \
 && chown gateway:gateway /var/gateway
WORKDIR /app
COPY deploy ./deploy
USER gateway
HEALTHCHECK --interval=15s --timeout=10s --start-period=60s --retries=3 \
  CMD ["python", "-m", "gateway.healthcheck"]
ENTRYPOINT ["gateway"]
CMD ["--help"]
