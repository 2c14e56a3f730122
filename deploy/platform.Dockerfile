# The platform's image: the web app, the worker and the action server (the command picks one,
# as in the Procfile). Installed by scripts/install-env.sh from requirements.lock, exactly as
# `make install` builds .venv, so what CI tests is what ships.
#   docker build -f deploy/platform.Dockerfile -t omniclinica-platform .
# Browser assets (the chart library) from package-lock.json by the same script `make install`
# runs; only the production dependencies reach the image.
FROM node:20-bookworm-slim AS web-assets
WORKDIR /app
COPY scripts/install-web-assets.sh scripts/
COPY package.json package-lock.json ./
RUN scripts/install-web-assets.sh --production

FROM python:3.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SQLALCHEMY_SILENCE_UBER_WARNING=1
WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY scripts/install-env.sh scripts/find-python.sh scripts/
COPY requirements.lock ./
RUN scripts/install-env.sh platform .venv requirements.lock

COPY . .
COPY --from=web-assets /app/node_modules node_modules
RUN useradd --system --home-dir /app clinic && mkdir -p var && chown clinic var
USER clinic

# The Procfile's `web` command by default; compose runs the worker and the action server from
# the same image with their Procfile commands.
EXPOSE 8000 5055
CMD ["sh", "-c", "exec .venv/bin/python -m processes.web"]
