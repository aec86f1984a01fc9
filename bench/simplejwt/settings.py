"""DRF SimpleJWT, set up as a team would for production, as the benchmark's Python reference
(scripts/bench.sh): rotating refresh tokens with the blacklist, Argon2id with Baton's parameters
(19 MiB, t=2, p=1), SQLite in WAL mode, DEBUG off. Not part of Baton."""
import os

from django.contrib.auth.hashers import Argon2PasswordHasher

SECRET_KEY = os.environ.get("SIMPLEJWT_SECRET_KEY", "bench-only-" + "x" * 40)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "urls"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["SIMPLEJWT_DB"],
        # Concurrent writers (the blacklist) wait their turn instead of failing "database is locked".
        "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE", "timeout": 20},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"


class BatonArgon2(Argon2PasswordHasher):
    """Baton's Argon2id parameters, so that a login costs both servers the same hash."""

    algorithm = "argon2"
    time_cost = 2
    memory_cost = 19 * 1024
    parallelism = 1


PASSWORD_HASHERS = ["settings.BatonArgon2"]
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework_simplejwt.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}
SIMPLE_JWT = {
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
}
