FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only what the package needs: never .env, .venv or tests.
COPY pyproject.toml ./
COPY utils ./utils
COPY bot ./bot
COPY handler ./handler
COPY analysis ./analysis
COPY locales ./locales
RUN pip install . && python -m bot.i18n && useradd --create-home --uid 10001 bot \
    && mkdir -p /app/data && chown bot /app/data

ENV TELEGRAM_HTTP_HOST=0.0.0.0 \
    TELEGRAM_HTTP_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"

USER bot
CMD ["python", "-m", "bot"]
