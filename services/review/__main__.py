"""Run the review service: python -m services.review"""

from services.review.app import build
from services.review.settings import ReviewSettings
from shared.serve import serve

if __name__ == "__main__":
    settings = ReviewSettings()
    serve(build(settings), settings)
