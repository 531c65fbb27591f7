# One image for the three services; docker-compose.yml picks the service by command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 REE_DATA_DIR=/data REE_HOST=0.0.0.0
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
COPY reechannel ./reechannel
RUN pip install --no-cache-dir . && useradd --system --uid 10001 ree && mkdir -p /data \
    && chown ree /data
USER ree
VOLUME ["/data"]
CMD ["python", "-m", "services.intake"]
