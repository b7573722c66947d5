# backprop-viz as a container: `docker build -t backprop-viz .` then `docker run -p 8000:8000 backprop-viz`.
# WORKERS (default 2) sets the uvicorn worker processes: one per core you give the container.

# Stage 1: build the wheel (templates/, static/ and the vendored assets travel inside it).
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY app ./app
COPY engine ./engine
COPY templates ./templates
COPY static ./static
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Stage 2: the wheel and its dependencies on a slim Python, run by a non-root user.
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OPENBLAS_NUM_THREADS=1 \
    OMP_NUM_THREADS=1 \
    WORKERS=2 \
    PORT=8000
COPY --from=build /wheels /tmp/wheels
RUN pip install /tmp/wheels/*.whl && rm -rf /tmp/wheels \
    && useradd --create-home --shell /usr/sbin/nologin --uid 10001 backprop
USER backprop
WORKDIR /home/backprop
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
# exec: uvicorn is PID 1 and gets SIGTERM from `docker stop` (graceful shutdown)
CMD ["sh", "-c", "exec backprop-viz serve --host 0.0.0.0 --port \"$PORT\" --workers \"$WORKERS\""]
