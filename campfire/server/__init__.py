"""The reference archive server: an HTTP API over an archive root (``campfire serve``).

Needs the ``server`` extra (FastAPI, uvicorn, bcrypt, PyJWT); nothing here is imported
by ``import campfire``. Start it with :func:`campfire.server.app.serve` or build the
ASGI app with :func:`campfire.server.app.create_app`.
"""
