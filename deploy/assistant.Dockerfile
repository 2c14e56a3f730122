# The assistant's image: Rasa 3.6 on its sealed Python 3.10, installed by
# scripts/install-env.sh from requirements-rasa.lock exactly as `make install` builds
# .venv-rasa. The model is trained here, by the same script `make run` uses
# (scripts/train-if-changed.sh), from the training data in this commit: the image is built
# from the repository alone, and the model it serves always matches its domain and connector.
#   docker build -f deploy/assistant.Dockerfile -t omniclinica-assistant .
FROM python:3.10-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RASA_TELEMETRY_ENABLED=false \
    TF_CPP_MIN_LOG_LEVEL=2 \
    SQLALCHEMY_SILENCE_UBER_WARNING=1
WORKDIR /app

COPY scripts/install-env.sh scripts/find-python.sh scripts/
COPY requirements-rasa.lock ./
RUN scripts/install-env.sh assistant .venv-rasa requirements-rasa.lock

# Training inputs only (the pipeline includes the normaliser and the safety net, config.yml),
# then the model: a change elsewhere does not retrain.
COPY scripts/train-if-changed.sh scripts/
COPY config.yml domain.yml ./
COPY bot/__init__.py bot/normaliser.py bot/wording.py bot/safety_net.py bot/emergency.py bot/
COPY bot/data bot/data
RUN scripts/train-if-changed.sh

# What Rasa loads at run time besides: its one connector (it imports nothing of the
# platform), and the endpoints and credentials files.
COPY bot/channels bot/channels
COPY endpoints.yml credentials.yml ./
RUN useradd --system --home-dir /app assistant && chown -R assistant /app/var
USER assistant

# The Procfile's `assistant` command; compose gives each replica its address.
ENV BOT_HOST=0.0.0.0 BOT_PORT=5005
EXPOSE 5005
CMD ["sh", "-c", "exec .venv-rasa/bin/rasa run --model var/rasa/bot.tar.gz --endpoints endpoints.yml --credentials credentials.yml --interface ${BOT_HOST} --port ${BOT_PORT}"]
