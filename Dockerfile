# gridmap app image: the same code and demo as the README, talking to the
# postgis/postgis service of docker-compose.yml through GRIDMAP_DATABASE_URL.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY gis ./gis
COPY migrations ./migrations
COPY data ./data
COPY package.json package-lock.json ./
COPY scripts/install_assets.sh ./scripts/
RUN apt-get update -qq && apt-get install -y -qq nodejs npm && rm -rf /var/lib/apt/lists/* \
    && ./scripts/install_assets.sh
RUN pip install -e .
EXPOSE 8000
CMD ["gridmap", "demo"]
