"""gunicorn entry point: `gunicorn wsgi:app` (never with --preload: pools open per worker)."""

from webapp import create_app

app = create_app()
