"""HTTP API (FastAPI): search, articles, health. No search or storage logic lives here."""

from kb.api.app import create_app

__all__ = ["create_app"]
