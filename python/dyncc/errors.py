"""Errors of the dyncc Python front end."""


class ExportError(Exception):
    """A model that cannot be exported or imported: the message names the
    module (or file) and the reason. Nothing is written when it is raised."""


def first_line(e):
    """The first line of an exception's message (its type name when the
    message is empty): torch.export and torch-mlir raise pages of text."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
