# One image for the broker and every node; the command chooses which runs.
#
# The first stage builds the wheel; the second installs that wheel alone (with its
# dependencies) into a virtual environment, so the image runs exactly what an install
# from the wheel runs: no source tree, no editable install. It runs as an unprivileged
# user, and Docker asks the gRPC health service of the broker or node it runs.
#
# Every dependency is installed at the exact version and hash of requirements/image.lock
# (`make lock`), and the wheel itself with --no-deps, so nothing unpinned reaches the image.
#
# The base image is named by tag only: Docker Hub was not reachable where this file was
# last changed, and a digest is never written down unless it was read from the registry.
# `make pin-base-image` asks the registry for the tag's current digest and writes it here
# (PYTHON_IMAGE=python:3.11-slim@sha256:...); commit that change.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY nodes ./nodes
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/gateway/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /dist /tmp/dist
COPY requirements/image.lock /tmp/image.lock
RUN python -m venv /opt/gateway \
 && /opt/gateway/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: -r /tmp/image.lock \
 && /opt/gateway/bin/pip install --no-cache-dir --no-deps /tmp/dist/*.whl \
 && rm -rf /tmp/dist /tmp/image.lock \
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
