"""The admin console: a web page at / for the four steps, served from package data.

``web/`` holds its TypeScript sources, ``static/`` what the service serves (built by
``make console``; a test checks that it matches the sources).
"""

from console.routes import console_routes

__all__ = ["console_routes"]
