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
RUN pip install . && useradd --create-home --uid 10001 bot

USER bot
CMD ["python", "-m", "bot"]
