# One image for every Orderflow process (docker-compose.yml picks the command of each).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
# The static files (the admin's) go into the image; whitenoise serves them from gunicorn.
RUN DEBUG=0 SECRET_KEY=collectstatic-only CELERY_BROKER_URL=memory:// \
    python manage.py collectstatic --noinput

RUN useradd --no-create-home --shell /usr/sbin/nologin orderflow
USER orderflow
EXPOSE 8000
CMD ["gunicorn", "config.wsgi"]
