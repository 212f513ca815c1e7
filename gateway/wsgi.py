"""The only module-level app: what Gunicorn imports (gateway.wsgi:app)."""

from gateway.app import create_app_from_env

app = create_app_from_env()
