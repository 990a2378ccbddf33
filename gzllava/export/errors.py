"""The one error type of the exporters: its message is the one line the CLI prints (exit 2)."""


class ExportError(ValueError):
    """A model, file or option the export cannot handle; the message names it and what was expected."""
