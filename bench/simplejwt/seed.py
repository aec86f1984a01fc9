"""Creates the database and N users (bench0 … bench{N-1}); prints one line: the users' refresh
tokens, comma-separated, then a space and user 0's access token.
Usage: SIMPLEJWT_DB=… python seed.py N"""
import sys

import django
from django.core.management import call_command

django.setup()
from django.contrib.auth.models import User  # noqa: E402 (needs setup first)
from rest_framework_simplejwt.tokens import RefreshToken  # noqa: E402

call_command("migrate", verbosity=0)
tokens = []
for i in range(int(sys.argv[1])):
    user = User.objects.create_user(f"bench{i}", password="correct horse battery staple")
    tokens.append(RefreshToken.for_user(user))
print(",".join(str(t) for t in tokens), str(tokens[0].access_token))
