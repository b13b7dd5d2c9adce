"""The image builder: teachers turn a Dockerfile into a published environment image (a hub service)."""
