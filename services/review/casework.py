"""Where the routes and the console (services/review/api.py, console.py) import casework
from; the service layer itself is the package services/review/service/."""

from services.review.service import SOURCE, Casework, Who

__all__ = ["SOURCE", "Casework", "Who"]
