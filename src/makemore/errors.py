"""The one exception type a user should ever see: printed as a single line, no traceback."""


class MakemoreError(Exception):
    """A problem with the user's input (file, flags, run directory) rather than a bug."""
