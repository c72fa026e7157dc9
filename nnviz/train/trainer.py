"""The Qt-free trainer shared by the CLI and the GUI's worker thread."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..engine import get_loss, make_optimizer, optimizer_from_config
from ..engine.layers.scaling import bind_normalization
from .fused_mlp import FusedMLPStep
from .history import History

FUSED_MODES = ("auto", "off")


class TrainingDiverged(ArithmeticError):
    """Loss, gradients or weights stopped being finite; the step was not applied."""

    def __init__(self, step: int, what: str, lr: float) -> None:
        self.step, self.what, self.lr = step, what, lr
        super().__init__(f"training diverged at step {step}: {what} "
                         f"(learning rate {lr:g} is probably too high)")


class TrainerError(ValueError):
    pass


# Runaway rule: a loss above RUNAWAY_FACTOR * max(first loss of this run, 1) on
# RUNAWAY_STEPS consecutive steps is divergence, like NaN. Healthy training stays far below
# (softmax cross-entropy starts near ln(classes), so the line is ~2,300 for 10 classes);
# lr 1e30 reaches 5e31 in two steps. One noisy batch cannot trigger it.
RUNAWAY_FACTOR = 1e3
RUNAWAY_STEPS = 3


def accuracy(out: np.ndarray, labels: np.ndarray) -> float:
    if out.ndim == 2 and out.shape[1] == 1:
        pred = (out[:, 0] > 0).astype(np.int64)
    else:
        pred = out.argmax(axis=1)
    return float((pred == labels).mean()) if len(labels) else float("nan")


class Trainer:
    """Trains `model` on `dataset`, one batch per step().

    fused: "auto" runs a whole step of a plain MLP in one backend kernel when the backend
    has the "fused_mlp" capability and the model, loss and optimiser qualify (same numbers
    as the layer path, up to summation order); "off" always runs layer by layer.
    """
    GOOD_EVERY = 25   # steps between copies of the last finite weights

    def __init__(self, model: Any, dataset: Any, loss: str = "softmax_xent", optimizer: str = "sgd",
                 lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0,
                 l1: float = 0.0, batch_size: int = 32, seed: int = 0, fused: str = "auto") -> None:
        self.model = model
        self.fused = fused
        self._fused_mlp = FusedMLPStep()
        self.dataset = dataset
        if tuple(dataset.input_shape) != tuple(model.input_shape):
            raise TrainerError(f"dataset {dataset.name!r} has inputs of shape "
                               f"{tuple(dataset.input_shape)}, model {model.name!r} expects "
                               f"{tuple(model.input_shape)}")
        # an imported model's input scaling undoes this dataset's standardisation
        bind_normalization(model, getattr(dataset, "normalization", None))
        self.loss_name = loss
        self.loss = get_loss(loss, model.B)
        self.optimizer = make_optimizer(optimizer, model.parameters(), lr=lr, momentum=momentum,
                                        nesterov=nesterov, weight_decay=weight_decay, l1=l1,
                                        backend=model.B)
        self.batch_size = batch_size
        self.seed = int(seed)
        self.epoch = 0      # epochs completed
        self.pos = 0        # samples consumed in the current epoch
        self.steps = 0
        self.seconds = 0.0  # time spent in step()
        self.samples = 0
        self.history = History()
        self._perm = None
        self._reset_watch()

    # --- hyper-parameters (applied at the next step) ---------------------------
    @property
    def batch_size(self) -> int:
        return self._batch_size

    @batch_size.setter
    def batch_size(self, b: int) -> None:
        n = len(self.dataset.y_train)
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1:
            raise TrainerError(f"batch size must be a positive integer, got {b!r}")
        if b > n:
            raise TrainerError(f"batch size {b} is larger than the {n} training samples "
                               f"of {self.dataset.name!r}")
        self._batch_size = int(b)

    @property
    def fused(self) -> str:
        return self._fused

    @fused.setter
    def fused(self, mode: str) -> None:
        if mode not in FUSED_MODES:
            raise TrainerError(f"fused must be one of {', '.join(FUSED_MODES)}, got {mode!r}")
        self._fused = mode

    @property
    def uses_fused_step(self) -> bool:
        """True once a step ran as one fused kernel (and the plan still stands)."""
        return self._fused == "auto" and self._fused_mlp.active

    @property
    def lr(self) -> float:
        return self.optimizer.lr

    @lr.setter
    def lr(self, v: float) -> None:
        self.optimizer.lr = v

    def set_optimizer(self, name: str, **kw: Any) -> None:
        kw.setdefault("lr", self.lr)
        self.optimizer = make_optimizer(name, self.model.parameters(), backend=self.model.B, **kw)

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.dataset.y_train) // self.batch_size)

    # --- stepping ----------------------------------------------------------------
    def _next_batch(self):
        n = len(self.dataset.y_train)
        if self._perm is None:
            self._perm = np.random.default_rng([self.seed, self.epoch]).permutation(n)
        idx = self._perm[self.pos:self.pos + self.batch_size]
        return self.dataset.x_train[idx], self.dataset.y_train[idx]

    def next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of the batch the next step trains on; nothing moves (views look at it)."""
        return self._next_batch()

    def step(self) -> tuple[float, float]:
        """One batch: forward, loss, backward, update. Returns (loss, accuracy)."""
        t0 = time.perf_counter()
        done = self._fused_step() if self._fused == "auto" else None
        loss, n, acc = done if done is not None else self._layer_step()
        return self._after_step(t0, loss, n, acc)

    def _fused_step(self):
        """(loss, samples, accuracy) of one fused plain-MLP step, or None (not applicable)."""
        if self._perm is None:
            self._next_batch()
        b = min(self.batch_size, len(self.dataset.y_train) - self.pos)
        res = self._fused_mlp.run(self, self._perm, self.pos, b)
        if res is None:
            return None
        status, loss, correct = res
        if status == 1:
            self._diverged(f"loss is {loss}")
        if status == 2:
            self._diverged("a gradient is not finite")
        self._watch(loss)
        return loss, b, correct / b

    def _layer_step(self):
        x, y = self._next_batch()
        model, B = self.model, self.model.B
        out = model.forward(x, train=True)
        loss = self.loss.forward(out, y)
        if not np.isfinite(loss):
            self._diverged(f"loss is {loss}")
        self._watch(loss)
        model.backward(self.loss.backward(), need_input_grad=False)
        grads = model.gradients()
        if not B.all_finite(grads):
            self._diverged("a gradient is not finite")
        self.optimizer.step(grads)
        return loss, len(y), accuracy(B.to_host(out), y)

    def _after_step(self, t0, loss, n, acc):
        """Bookkeeping after an applied step, whichever path ran it."""
        self.steps += 1
        self._keep_good()
        self.history.add_step(self.steps, loss, acc)
        self.samples += n
        self.pos += n
        self.seconds += time.perf_counter() - t0
        if self.pos >= len(self.dataset.y_train):
            self._end_epoch()
        return loss, acc

    def _diverged(self, what):
        if self._bad_since is None:
            self._bad_since = self.steps + 1
        raise TrainingDiverged(self.steps + 1, what, self.lr)

    # --- the last good state: kept every GOOD_EVERY steps, whole, for a clean restart ---
    def _reset_watch(self):
        self._first_loss = None    # the reference of the runaway rule
        self._bad_since = None     # first step of the current run of too-high losses
        self._good = [self._snapshot()]

    def _watch(self, loss):
        if self._first_loss is None:
            self._first_loss = float(loss)
        limit = RUNAWAY_FACTOR * max(self._first_loss, 1.0)
        if loss <= limit:
            self._bad_since = None
            return
        if self._bad_since is None:
            self._bad_since = self.steps + 1
        if self.steps + 2 - self._bad_since >= RUNAWAY_STEPS:
            self._diverged(f"the loss ran away to {loss:.3g} (over {RUNAWAY_FACTOR:g}x the first "
                           f"loss {self._first_loss:.3g}, {RUNAWAY_STEPS} steps running)")

    def _snapshot(self):
        return {"steps": self.steps, "model": self.model.state(),
                "optimizer": self.optimizer.state_dict(),
                "counters": (self.epoch, self.pos, self.seconds, self.samples),
                "rng": self.model.rng.bit_generator.state}

    def _keep_good(self):
        if self.steps - self._good[-1]["steps"] < self.GOOD_EVERY or self._bad_since is not None:
            return
        if not self.model.B.all_finite(self.model.parameters()):
            self._diverged("a weight is not finite")
        self._good = [self._good[-1], self._snapshot()]   # the older one outlives a late runaway

    def restore_last_good(self) -> int:
        """Go back to the last state whose next loss was still good: weights, optimizer slots,
        counters and history up to it. Returns its step."""
        bad = self._bad_since if self._bad_since is not None else self.steps + 1
        ok = [g for g in self._good if g["steps"] + 1 < bad] or self._good[:1]
        g = ok[-1]
        self.model.load_state(g["model"])
        if g["optimizer"]["config"]["type"] == self.optimizer.config()["type"]:
            self.optimizer.load_state_dict(g["optimizer"])
        else:    # the optimizer was changed since: start its slots afresh
            self.optimizer = optimizer_from_config(self.optimizer.config(), self.model.parameters(),
                                                   self.model.B)
        self.steps = g["steps"]
        self.epoch, self.pos, self.seconds, self.samples = g["counters"]
        self.model.rng.bit_generator.state = g["rng"]
        self.history.truncate(self.steps)
        self._perm = None
        self._reset_watch()
        return self.steps

    def _end_epoch(self):
        self.epoch += 1
        self.pos = 0
        self._perm = None
        self.epoch_done = True

    def run_epoch(self, should_stop: Callable[[], bool] | None = None,
                  on_step: Callable[..., Any] | None = None) -> dict | None:
        """Train to the end of the current epoch; returns the epoch row, or None if stopped."""
        start_epoch = self.epoch
        while self.epoch == start_epoch:
            if should_stop is not None and should_stop():
                return None
            loss, acc = self.step()
            if on_step is not None:
                on_step(self, loss, acc)
        return self.record_epoch()

    def record_epoch(self) -> dict:
        steps = self.history.steps
        # mean of this epoch's step losses: cheap and what the learner saw
        spe = self.steps_per_epoch
        tl = float(np.mean(steps["loss"][-max(1, spe // self.history.stride):]))
        ta = float(np.mean(steps["accuracy"][-max(1, spe // self.history.stride):]))
        te_loss, te_acc = self.evaluate("test")
        row = dict(epoch=self.epoch, step=self.steps, train_loss=tl, train_accuracy=ta,
                   test_loss=te_loss, test_accuracy=te_acc, seconds=self.seconds)
        self.history.add_epoch(**row)
        return row

    def fit(self, epochs: int, should_stop: Callable[[], bool] | None = None,
            on_step: Callable[..., Any] | None = None, on_epoch: Callable[..., Any] | None = None) -> dict:
        for _ in range(int(epochs)):
            row = self.run_epoch(should_stop, on_step)
            if row is None:
                break
            if on_epoch is not None:
                on_epoch(self, row)
        return self.summary()

    def evaluate(self, split: str = "test", batch_size: int = 1024) -> tuple[float, float]:
        x = getattr(self.dataset, f"x_{split}")
        y = getattr(self.dataset, f"y_{split}")
        if len(y) == 0:
            return float("nan"), float("nan")
        total, correct = 0.0, 0.0
        for i in range(0, len(y), batch_size):
            out = self.model.forward(x[i:i + batch_size], train=False)
            total += self.loss.forward(out, y[i:i + batch_size]) * len(y[i:i + batch_size])
            correct += accuracy(self.model.B.to_host(out), y[i:i + batch_size]) * len(y[i:i + batch_size])
        return total / len(y), correct / len(y)

    def summary(self) -> dict:
        e = self.history.epochs
        last = lambda k: (e[k][-1] if e[k] else float("nan"))
        return {"train_loss": last("train_loss"), "train_accuracy": last("train_accuracy"),
                "test_loss": last("test_loss"), "test_accuracy": last("test_accuracy"),
                "epochs": self.epoch, "steps": self.steps, "seconds": round(self.seconds, 3),
                "samples_per_second": round(self.samples / self.seconds, 1) if self.seconds else 0.0,
                "backend": self.model.B.name}

    # --- state for saving and resuming ---------------------------------------------
    def config(self) -> dict:
        return {"loss": self.loss_name, "batch_size": self.batch_size, "seed": self.seed,
                "optimizer": self.optimizer.config()}

    def state_dict(self) -> dict:
        return {"config": self.config(), "epoch": self.epoch, "pos": self.pos,
                "steps": self.steps, "seconds": self.seconds, "samples": self.samples,
                "optimizer": self.optimizer.state_dict(),
                "dropout_rng": self.model.rng.bit_generator.state,
                "history": self.history.to_dict()}

    @staticmethod
    def check_state(model: Any, state: dict) -> None:
        """Dry-run what load_state_dict does with `state` for `model`, touching neither:
        raises TrainerError naming what is wrong, so a damaged saved state fails on load."""
        try:
            cfg = state["config"]
            get_loss(cfg["loss"])
            for where, k, lo in ((cfg, "batch_size", 1), (cfg, "seed", None), (state, "epoch", 0),
                                 (state, "pos", 0), (state, "steps", 0), (state, "samples", 0)):
                v = where[k]
                if isinstance(v, bool) or not isinstance(v, int) or (lo is not None and v < lo):
                    raise ValueError(f"{k} should be an integer" + ("" if lo is None else f" >= {lo}")
                                     + f", found {v!r}")
            if isinstance(state["seconds"], bool) or not isinstance(state["seconds"], (int, float)):
                raise ValueError(f"seconds should be a number, found {state['seconds']!r}")
            opt = optimizer_from_config(cfg["optimizer"], model.parameters())
            opt.load_state_dict(state["optimizer"])
            probe = np.random.default_rng()
            probe.bit_generator.state = state["dropout_rng"]
            if "history" not in state:
                raise TrainerError("the training state has no history")
            History.from_dict(state["history"])
        except TrainerError:
            raise
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError, IndexError) as e:
            msg = " ".join((str(e).strip() or type(e).__name__).split())
            msg = msg if len(msg) <= 300 else msg[:300] + "..."
            raise TrainerError(f"the training state is damaged ({type(e).__name__}: {msg})") from None

    def load_state_dict(self, state: dict) -> None:
        cfg = state["config"]
        self.loss_name = cfg["loss"]
        self.loss = get_loss(self.loss_name, self.model.B)
        self.batch_size = int(cfg["batch_size"])
        self.seed = int(cfg["seed"])
        self.optimizer = optimizer_from_config(cfg["optimizer"], self.model.parameters(), self.model.B)
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.pos, self.steps = int(state["epoch"]), int(state["pos"]), int(state["steps"])
        self.seconds, self.samples = float(state["seconds"]), int(state["samples"])
        self.model.rng.bit_generator.state = state["dropout_rng"]
        self.history = History.from_dict(state["history"])
        self._perm = None
        self._reset_watch()
