"""Errors of the dyncc Python front end."""


class ExportError(Exception):
    """A model that cannot be exported or imported: the message names the
    module (or file) and the reason. Nothing is written when it is raised."""
