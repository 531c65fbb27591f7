"""Run the notify service: python -m services.notify"""

from services.notify.app import build
from services.notify.settings import NotifySettings
from shared.serve import serve

if __name__ == "__main__":
    settings = NotifySettings()
    serve(build(settings), settings)
