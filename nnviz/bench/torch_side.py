"""What the torch worker runs: the PyTorch twins of the paired figures (never numba or nnviz.engine)."""
from __future__ import annotations

import numpy as np

from .workloads import grid_points, one_image, opt_kw, synthetic_arrays


class TorchSide:
    role = "torch"
    forbidden = ("numba", "nnviz.engine")

    def __init__(self):
        try:
            import torch
        except ImportError as e:
            self.torch, self.missing = None, str(e) or "not installed"
        else:
            self.torch, self.missing = torch, None
        self.fn, self.k = None, 1

    def init(self, msg):
        if self.torch is None:
            return {"torch": None, "missing": self.missing}
        self.torch.set_num_threads(int(msg["threads"]))
        try:   # the vector kernels ATen dispatches to (ATEN_CPU_CAPABILITY lowers it)
            cap = self.torch.backends.cpu.get_cpu_capability()
        except AttributeError:
            cap = None
        return {"torch": self.torch.__version__, "torch_threads": self.torch.get_num_threads(),
                "torch_cpu_capability": cap}

    def build(self, fig):
        torch = self.torch
        if torch is None:
            raise RuntimeError("torch is not installed")
        spec = fig["spec"]
        tm = torch_model(torch, spec)
        if fig["kind"] == "train":
            return torch_train_step(torch, tm, spec, fig), spec
        tm.eval()
        if fig["kind"] == "grid":
            tp = torch.from_numpy(grid_points())

            def tf():
                with torch.no_grad():
                    tm(tp)
            return tf, spec
        xt = torch.from_numpy(one_image())

        def tmaps():
            outs = [xt.clone()]
            with torch.no_grad():
                y = xt
                for m in tm:
                    y = m(y)
                    outs.append(y.clone())
            return outs
        return tmaps, spec

    def info(self, msg):
        return {}


def torch_model(torch, spec):
    nn = torch.nn
    shape = list(spec["input_shape"])
    mods = []
    for cfg in spec["layers"]:
        t = cfg["type"]
        if t == "Conv2D":
            mods.append(nn.Conv2d(shape[0], cfg["out_channels"], cfg["kernel_size"],
                                  padding=cfg.get("padding", 0)))
            k, p = cfg["kernel_size"], cfg.get("padding", 0)
            shape = [cfg["out_channels"], shape[1] - k + 2 * p + 1, shape[2] - k + 2 * p + 1]
        elif t == "MaxPool2D":
            mods.append(nn.MaxPool2d(cfg["kernel_size"]))
            shape = [shape[0], shape[1] // 2, shape[2] // 2]
        elif t == "Flatten":
            mods.append(nn.Flatten())
            shape = [int(np.prod(shape))]
        elif t == "Dense":
            mods.append(nn.Linear(shape[0], cfg["out_features"]))
            shape = [cfg["out_features"]]
        else:
            mods.append({"ReLU": nn.ReLU, "Tanh": nn.Tanh}[t]())
    return nn.Sequential(*mods)


def torch_train_step(torch, tm, spec, fig):
    """A full training step as Trainer.step does it: batch, forward, loss, backward,
    update, and the loss and accuracy read back."""
    n, batch = fig["n"], fig["batch"]
    classes = spec["layers"][-1]["out_features"]
    x, y = synthetic_arrays(tuple(spec["input_shape"]), n, classes)
    kw = opt_kw(fig["optimizer"])
    opt = (torch.optim.SGD(tm.parameters(), **kw) if fig["optimizer"] == "sgd"
           else torch.optim.Adam(tm.parameters(), **kw))
    lossf = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    state = {"pos": 0, "perm": torch.randperm(n)}

    def tstep():
        p = state["pos"]
        if p + batch > n:
            p, state["perm"] = 0, torch.randperm(n)
        idx = state["perm"][p:p + batch]
        state["pos"] = p + batch
        xb, yb = xt[idx], yt[idx]
        opt.zero_grad(set_to_none=True)
        out = tm(xb)
        loss = lossf(out, yb)
        loss.backward()
        opt.step()
        loss.item()
        (out.argmax(1) == yb).float().mean().item()
    return tstep
