"""The Qt-free trainer shared by the CLI and the GUI's worker thread."""
import time

import numpy as np

from ..engine import get_loss, make_optimizer, optimizer_from_config
from ..engine.layers.scaling import bind_normalization
from .history import History


class TrainingDiverged(ArithmeticError):
    """Loss, gradients or weights stopped being finite; the step was not applied."""

    def __init__(self, step, what, lr):
        self.step, self.what, self.lr = step, what, lr
        super().__init__(f"training diverged at step {step}: {what} "
                         f"(learning rate {lr:g} is probably too high)")


class TrainerError(ValueError):
    pass


def accuracy(out, labels):
    if out.ndim == 2 and out.shape[1] == 1:
        pred = (out[:, 0] > 0).astype(np.int64)
    else:
        pred = out.argmax(axis=1)
    return float((pred == labels).mean()) if len(labels) else float("nan")


class Trainer:
    GOOD_EVERY = 25   # steps between copies of the last finite weights

    def __init__(self, model, dataset, loss="softmax_xent", optimizer="sgd", lr=0.01,
                 momentum=0.0, nesterov=False, weight_decay=0.0, l1=0.0, batch_size=32, seed=0):
        self.model = model
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
        self._good = model.state()
        self._good_step = 0

    # --- hyper-parameters (applied at the next step) ---------------------------
    @property
    def batch_size(self):
        return self._batch_size

    @batch_size.setter
    def batch_size(self, b):
        n = len(self.dataset.y_train)
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1:
            raise TrainerError(f"batch size must be a positive integer, got {b!r}")
        if b > n:
            raise TrainerError(f"batch size {b} is larger than the {n} training samples "
                               f"of {self.dataset.name!r}")
        self._batch_size = int(b)

    @property
    def lr(self):
        return self.optimizer.lr

    @lr.setter
    def lr(self, v):
        self.optimizer.lr = v

    def set_optimizer(self, name, **kw):
        kw.setdefault("lr", self.lr)
        self.optimizer = make_optimizer(name, self.model.parameters(), backend=self.model.B, **kw)

    @property
    def steps_per_epoch(self):
        return -(-len(self.dataset.y_train) // self.batch_size)

    # --- stepping ----------------------------------------------------------------
    def _next_batch(self):
        n = len(self.dataset.y_train)
        if self._perm is None:
            self._perm = np.random.default_rng([self.seed, self.epoch]).permutation(n)
        idx = self._perm[self.pos:self.pos + self.batch_size]
        return self.dataset.x_train[idx], self.dataset.y_train[idx]

    def step(self):
        """One batch: forward, loss, backward, update. Returns (loss, accuracy)."""
        t0 = time.perf_counter()
        fused = getattr(self.model.B, "mlp_train_step", None)
        if fused is not None and "_next_batch" not in self.__dict__:  # plain MLPs: one kernel
            if self._perm is None:
                self._next_batch()
            b = min(self.batch_size, len(self.dataset.y_train) - self.pos)
            res = fused(self, self._perm, self.pos, b)
            if res is not None:
                return self._finish_fused(t0, b, *res)
        x, y = self._next_batch()
        model, B = self.model, self.model.B
        out = model.forward(x, train=True)
        loss = self.loss.forward(out, y)
        if not np.isfinite(loss):
            self._diverged(f"loss is {loss}")
        model.backward(self.loss.backward(), need_input_grad=False)
        grads = model.gradients()
        if not B.all_finite(grads):
            self._diverged("a gradient is not finite")
        self.optimizer.step(grads)
        self.steps += 1
        if self.steps - self._good_step >= self.GOOD_EVERY:
            if not B.all_finite(model.parameters()):
                self._diverged("a weight is not finite")
            self._good, self._good_step = model.state(), self.steps
        acc = accuracy(B.to_host(out), y)
        self.history.add_step(self.steps, loss, acc)
        self.samples += len(y)
        self.pos += len(y)
        self.seconds += time.perf_counter() - t0
        if self.pos >= len(self.dataset.y_train):
            self._end_epoch()
        return loss, acc

    def _finish_fused(self, t0, b, status, loss, correct):
        if status == 1:
            self._diverged(f"loss is {loss}")
        if status == 2:
            self._diverged("a gradient is not finite")
        model, B = self.model, self.model.B
        self.steps += 1
        if self.steps - self._good_step >= self.GOOD_EVERY:
            if not B.all_finite(model.parameters()):
                self._diverged("a weight is not finite")
            self._good, self._good_step = model.state(), self.steps
        acc = correct / b
        self.history.add_step(self.steps, loss, acc)
        self.samples += b
        self.pos += b
        self.seconds += time.perf_counter() - t0
        if self.pos >= len(self.dataset.y_train):
            self._end_epoch()
        return loss, acc

    def _diverged(self, what):
        raise TrainingDiverged(self.steps + 1, what, self.lr)

    def restore_last_good(self):
        """Put back the last weights known to be finite; returns their step."""
        self.model.load_state(self._good)
        return self._good_step

    def _end_epoch(self):
        self.epoch += 1
        self.pos = 0
        self._perm = None
        self.epoch_done = True

    def run_epoch(self, should_stop=None, on_step=None):
        """Train to the end of the current epoch; returns the epoch row, or None if stopped."""
        start_epoch = self.epoch
        while self.epoch == start_epoch:
            if should_stop is not None and should_stop():
                return None
            loss, acc = self.step()
            if on_step is not None:
                on_step(self, loss, acc)
        return self.record_epoch()

    def record_epoch(self):
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

    def fit(self, epochs, should_stop=None, on_step=None, on_epoch=None):
        for _ in range(int(epochs)):
            row = self.run_epoch(should_stop, on_step)
            if row is None:
                break
            if on_epoch is not None:
                on_epoch(self, row)
        return self.summary()

    def evaluate(self, split="test", batch_size=1024):
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

    def summary(self):
        e = self.history.epochs
        last = lambda k: (e[k][-1] if e[k] else float("nan"))
        return {"train_loss": last("train_loss"), "train_accuracy": last("train_accuracy"),
                "test_loss": last("test_loss"), "test_accuracy": last("test_accuracy"),
                "epochs": self.epoch, "steps": self.steps, "seconds": round(self.seconds, 3),
                "samples_per_second": round(self.samples / self.seconds, 1) if self.seconds else 0.0,
                "backend": self.model.B.name}

    # --- state for saving and resuming ---------------------------------------------
    def config(self):
        return {"loss": self.loss_name, "batch_size": self.batch_size, "seed": self.seed,
                "optimizer": self.optimizer.config()}

    def state_dict(self):
        return {"config": self.config(), "epoch": self.epoch, "pos": self.pos,
                "steps": self.steps, "seconds": self.seconds, "samples": self.samples,
                "optimizer": self.optimizer.state_dict(),
                "dropout_rng": self.model.rng.bit_generator.state,
                "history": self.history.to_dict()}

    def load_state_dict(self, state):
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
        self._good, self._good_step = self.model.state(), self.steps
