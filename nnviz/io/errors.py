"""The one error the model files raise."""


class ModelFormatError(ValueError):
    """A model file cannot be read: missing, not HDF5, damaged, or from a newer nnviz.

    The message is ``"<path>: <reason>"``; both parts are kept as attributes.
    """

    def __init__(self, path: object, reason: object) -> None:
        self.path = str(path)
        self.reason = str(reason)
        super().__init__(f"{self.path}: {self.reason}")

    def __reduce__(self):
        return type(self), (self.path, self.reason)
