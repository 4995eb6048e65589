"""kb: knowledge base and hybrid Chinese search for an IT service desk (运维服务台)."""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
