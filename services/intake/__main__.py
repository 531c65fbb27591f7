"""Run the intake service: python -m services.intake"""

from services.intake.app import build
from services.intake.settings import IntakeSettings
from shared.serve import serve

if __name__ == "__main__":
    settings = IntakeSettings()
    serve(build(settings), settings)
