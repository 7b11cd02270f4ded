# One image for every service of docker-compose.yml: the API, the worker (and later Ray's nodes).
FROM python:3.11-slim
WORKDIR /srv/cifar-jobs
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
COPY app app
COPY workers workers
COPY models models
COPY store store
COPY sweeps sweeps
COPY webhooks webhooks
COPY supervision supervision
COPY specs specs
COPY migrations migrations
COPY cli cli
COPY alembic.ini ./
RUN pip install '.[ray]'
# an unprivileged user runs every service; data sets, the SQLite file if no DATABASE_URL is given and
# ImageNet weights live on a volume it owns
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin cifar && mkdir /data && chown cifar:cifar /data
USER cifar
ENV DATA_DIR=/data
VOLUME /data
EXPOSE 8000
CMD ["python", "-m", "uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000"]
