# One image for the broker and every node; the command chooses which runs.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY proto ./proto
COPY gateway ./gateway
COPY nodes ./nodes
COPY policies ./policies
RUN pip install --no-cache-dir -e . && useradd --create-home gateway
COPY deploy ./deploy
USER gateway
ENTRYPOINT ["gateway"]
CMD ["--help"]
