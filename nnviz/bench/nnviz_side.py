"""What the nnviz worker runs: Numba kernels, never torch."""
from __future__ import annotations

from .workloads import grid_points, one_image, opt_kw, synthetic


class NnvizSide:
    role = "nnviz"
    forbidden = ("torch",)

    def __init__(self):
        import numba  # noqa: F401

        from ..engine.process import tune_process
        tune_process()            # what `nnviz` itself does at start
        self.fn, self.k = None, 1

    def init(self, msg):
        import numba

        from ..engine import backend
        from ..engine.backend.cpu_target import numba_target
        backend.use(msg.get("backend") or "cpu")
        cpu_name, feats = numba_target()
        return {"numba": numba.__version__, "numba_threads": numba.config.NUMBA_NUM_THREADS,
                "backend": backend.get().name, "numba_target": f"{cpu_name} ({', '.join(feats)})"}

    def build(self, fig):
        from ..engine import model_from_spec, read_spec
        spec = read_spec(fig["spec"]) if isinstance(fig["spec"], str) else fig["spec"]
        model = model_from_spec(spec, seed=0)
        if fig["kind"] == "train":
            from ..train import Trainer
            classes = spec["layers"][-1]["out_features"]
            data = synthetic(tuple(spec["input_shape"]), fig["n"], classes)
            tr = Trainer(model, data, optimizer=fig["optimizer"], batch_size=fig["batch"],
                         **opt_kw(fig["optimizer"]))
            return tr.step, spec
        if fig["kind"] == "grid":
            pts = grid_points()
            return (lambda: model.forward(pts)), spec
        x = one_image()
        return (lambda: model.activations(x)), spec

    def info(self, msg):
        import numba
        try:
            layer = numba.threading_layer()
        except ValueError:   # no parallel kernel has run yet
            layer = None
        return {"numba_threading_layer": layer}

    def solo(self, msg):
        from .figures import FIGURES
        fig = FIGURES.get(msg["name"])
        if fig is None or fig.where != "worker":
            raise KeyError(msg["name"])
        value, extra = fig.run(bool(msg.get("quick")))
        return {"value": value, "extra": extra}
