# Labour Atlas server image: the app and its `labour-atlas` command line.
# The database is a separate PostGIS service (see docker-compose.yml); the
# image holds no secrets (.env is excluded by .dockerignore).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Every dependency (psycopg, shapely, pyproj, pyogrio with GDAL) comes as a
# binary wheel: no compiler or system libraries are needed.
WORKDIR /src
COPY . .
RUN pip install . \
    && useradd --system --uid 10001 --user-group --home-dir /app --create-home labour

# Run from an empty folder as an unprivileged user: the installed package is
# used, not the sources, and no stray .env is read.
WORKDIR /app
USER labour
EXPOSE 8000

# docker-compose.yml prepares the database before serving; on its own the
# image only serves an already prepared DATABASE_URL.
CMD ["labour-atlas", "serve", "--host", "0.0.0.0", "--port", "8000"]
