"""The three routes the benchmark calls, at Baton's paths."""
from django.urls import path
from rest_framework.decorators import api_view
from rest_framework.response import Response
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView


@api_view(["GET"])
def secret(request):
    return Response({"message": f"Hello {request.user.username}! Only a logged-in user can read this."})


urlpatterns = [
    path("api/auth/login", TokenObtainPairView.as_view()),
    path("api/auth/refresh", TokenRefreshView.as_view()),
    path("api/users/secret", secret),
]
