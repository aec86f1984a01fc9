"""gunicorn's entry point: `gunicorn wsgi:application` (Django sets itself up first)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
application = get_wsgi_application()
