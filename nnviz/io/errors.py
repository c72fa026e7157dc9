"""The one error the model files raise."""


class ModelFormatError(ValueError):
    """A model file cannot be read: missing, not HDF5, damaged, or from a newer nnviz.

    The message is ``"<path>: <reason>"``; both parts are kept as attributes.
    """

    MAX_REASON = 600   # a hostile file must not produce a 65 MB error line

    def __init__(self, path: object, reason: object) -> None:
        self.path = str(path)
        reason = str(reason)
        self.reason = reason if len(reason) <= self.MAX_REASON else reason[:self.MAX_REASON] + "..."
        super().__init__(f"{self.path}: {self.reason}")

    def __reduce__(self):
        return type(self), (self.path, self.reason)
