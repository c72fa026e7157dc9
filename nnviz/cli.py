"""Command line: `nnviz` opens the app; train / eval / info / datasets / bench run headless."""
import argparse
import json
import math
import os
import signal
import sys
import threading
import time

EXIT_USAGE = 2
EXIT_DIVERGED = 3


class CliError(Exception):
    pass


def _user_errors():
    """Exceptions that are the user's input, reported as one line (no traceback)."""
    from .engine import LayerError, LossError, OptimizerError
    from .engine.backend import BackendError
    from .io.output import OutputError
    from .lessons import LessonError
    from .train import TrainerError
    errs = [OutputError, LayerError, LossError, OptimizerError, BackendError, TrainerError, CliError, LessonError,
            OSError]    # a path the user gave: missing, a folder, no permission, name too long
    try:
        from .data import DatasetError
        errs.append(DatasetError)
    except ImportError:
        pass
    try:
        from .io import ModelFormatError
        errs.append(ModelFormatError)
    except ImportError:
        pass
    return tuple(errs)


def _positive(kind):
    def parse(s):
        try:
            v = kind(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {s!r}") from None
        if not v > 0 or not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {s}")
        return v
    return parse


SEED_MAX = 2 ** 63 - 1   # saved as a 64-bit integer


def _seed(s):
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {s!r}") from None
    if not 0 <= v <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to 2**63-1, got {s}")
    return v


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line ``nnviz: error: ...`` (exit 2), no usage dump."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"nnviz: error: {message} (see '{self.prog} -h')\n")


def _momentum(s):
    v = _nonneg(s)
    if not v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 0 and < 1, got {s}")
    return v


def _nonneg(s):
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
    if not v >= 0 or not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {s}")
    return v


def _add_data_args(p, required=False):
    p.add_argument("--data", required=required, default=None if required else "shapes",
                   help="dataset name (shapes, color-shapes, circle, xor, gauss, spiral, moons, "
                        "mnist, fashion-mnist, cifar10) or a path to an .h5 file / image folder "
                        "(default: shapes)")
    p.add_argument("--data-dir", default=None,
                   help="folder holding downloaded datasets (default: $NNVIZ_DATA_DIR or the "
                        "user data folder)")
    p.add_argument("--image-size", type=_positive(int), default=None, metavar="N",
                   help="image folders: resize every image to N x N (default: the first "
                        "image's size, at most 128 a side)")


def _scaling(s):
    from .io.scaling import ScalingError, parse_scaling
    try:
        parse_scaling(s)
    except ScalingError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return s


def _add_scaling_arg(p):
    from .io.scaling import HELP
    p.add_argument("--input-scaling", type=_scaling, default=None,
                   metavar="mnist|minus1to1|unit|none|MEAN,STD", help=HELP + " (default: keep "
                   "the model's own)")


def build_parser():
    p = _Parser(prog="nnviz", description="Build, train and watch neural networks learn.")
    from . import __version__
    p.add_argument("--version", action="version", version=f"nnviz {__version__}")
    sub = p.add_subparsers(dest="command")

    t = sub.add_parser("train", help="train a model headless")
    t.add_argument("--model", default=None,
                   help="preset (mlp0, mlp1, mlp2, lenet5, lab7-cnn) or a model .json file "
                        "(default: picked for the data)")
    _add_data_args(t)
    t.add_argument("--epochs", type=_positive(int), default=2)
    t.add_argument("--batch-size", type=_positive(int), default=None)
    t.add_argument("--lr", type=_positive(float), default=None,
                   help="learning rate (default: 0.01 for 2-D points; for images 0.05, or the "
                        "data set's own, e.g. 0.02 for color-shapes)")
    t.add_argument("--optimizer", choices=["sgd", "adam"], default=None)
    t.add_argument("--momentum", type=_momentum, default=None)
    t.add_argument("--nesterov", action="store_true")
    t.add_argument("--weight-decay", type=_nonneg, default=0.0, help="L2 penalty")
    t.add_argument("--l1", type=_nonneg, default=0.0, help="L1 penalty")
    t.add_argument("--loss", choices=["softmax_xent", "mse", "bce"], default="softmax_xent")
    t.add_argument("--seed", type=_seed, default=0)
    t.add_argument("--limit", type=_positive(int), default=None,
                   help="use only the first N training samples (quick runs)")
    t.add_argument("--backend", choices=["auto", "cpu", "cuda"], default="auto")
    t.add_argument("--out", default=None, help="save the trained model to this .h5 file")
    t.add_argument("--resume", default=None, help="continue training a saved .h5 model")
    t.add_argument("--json", action="store_true", help="print a JSON summary as the last line")

    e = sub.add_parser("eval", help="evaluate a saved model (nnviz .h5, Keras .h5/.keras, "
                                    ".onnx) on a dataset")
    e.add_argument("model")
    _add_data_args(e, required=False)
    e.add_argument("--backend", choices=["auto", "cpu", "cuda"], default="auto")
    _add_scaling_arg(e)
    e.add_argument("--json", action="store_true")

    i = sub.add_parser("info", help="describe a saved model (any format) or preset")
    i.add_argument("model")
    _add_scaling_arg(i)
    i.add_argument("--json", action="store_true")

    c = sub.add_parser("convert", help="convert a model file: the extensions pick the formats "
                                       "(.h5 nnviz/Keras, .keras, .onnx)")
    c.add_argument("input", help="a model file: nnviz or Keras .h5, Keras .keras, .onnx")
    c.add_argument("output", help="where to write: .h5 (nnviz, opens in Keras), .keras "
                                  "(Keras 3) or .onnx")
    _add_scaling_arg(c)

    try:
        from .data.cli import add_datasets_parser
        add_datasets_parser(sub)
    except ImportError:
        pass

    b = sub.add_parser("bench", help="measure training speed (beside PyTorch when installed)")
    b.add_argument("--quick", action="store_true", help="fewer repeats")
    b.add_argument("--backend", choices=["auto", "cpu", "cuda"], default="cpu")
    b.add_argument("--only", default=None, help="comma-separated benchmark names")
    b.add_argument("--no-torch", action="store_true")
    b.add_argument("--json", action="store_true")

    g = sub.add_parser("gui", help="open the desktop app (the default)")
    g.add_argument("--backend", choices=["auto", "cpu", "cuda"], default="auto")
    g.add_argument("--lesson", default=None, help="a lesson file to open (`nnviz LESSON.json` too)")
    return p


# ---- train --------------------------------------------------------------------
_DEFAULTS = {  # per kind of data: a model and hyper-parameters that work
    "image": dict(batch_size=64, lr=0.05, optimizer="sgd", momentum=0.9),
    "points": dict(batch_size=16, lr=0.01, optimizer="adam", momentum=0.0),
}


def _default_model(dataset):
    shape = tuple(dataset.input_shape)
    if len(shape) == 1:
        return "mlp2"
    return "lab7-cnn" if shape[0] == 3 else "lenet5"


def _load_data(args):
    from pathlib import Path

    from .data import load_dataset
    size = getattr(args, "image_size", None)
    if size is None:
        return load_dataset(args.data, data_dir=args.data_dir)
    if not Path(args.data).expanduser().is_dir():
        raise CliError(f"--image-size applies to image folders; {args.data!r} is not a folder")
    return load_dataset(args.data, data_dir=args.data_dir, size=size)


class _Progress:
    def __init__(self, enabled, total_steps):
        self.enabled, self.total = enabled, total_steps
        self.last = 0.0

    def __call__(self, trainer, loss, acc):
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last < 0.1 and trainer.pos:
            return
        self.last = now
        done = trainer.pos / len(trainer.dataset.y_train)
        bar = "#" * int(done * 30)
        sys.stderr.write(f"\repoch {trainer.epoch + 1} [{bar:<30}] step {trainer.steps} "
                         f"loss {loss:.4f} acc {acc:.3f} "
                         f"{trainer.samples / max(trainer.seconds, 1e-9):,.0f} samples/s   ")
        sys.stderr.flush()


def _apply_resume_settings(trainer, args, hp):
    """--resume: the optimizer and learning rate given on the command line win over the file."""
    cfg = trainer.optimizer.config()
    kind = cfg["type"].lower()
    if args.optimizer is not None and args.optimizer != kind:
        kw = {"lr": args.lr if args.lr is not None else hp["lr"],
              "weight_decay": cfg["weight_decay"], "l1": cfg["l1"]}
        if args.optimizer == "sgd":
            kw.update(momentum=args.momentum if args.momentum is not None else hp["momentum"],
                      nesterov=args.nesterov)
        trainer.set_optimizer(args.optimizer, **kw)
    elif args.momentum is not None and kind == "sgd" and args.momentum != cfg["momentum"]:
        trainer.set_optimizer("sgd", lr=args.lr if args.lr is not None else trainer.lr,
                              momentum=args.momentum, nesterov=args.nesterov or cfg["nesterov"],
                              weight_decay=cfg["weight_decay"], l1=cfg["l1"])
    elif args.lr is not None:
        trainer.lr = args.lr


def _optimizer_text(opt):
    cfg = opt.config()
    extra = f" momentum {cfg['momentum']:g}" if "momentum" in cfg else ""
    return f"{cfg['type'].lower()} lr {cfg['lr']:g}{extra}"


def cmd_train(args):
    from pathlib import Path

    import numpy as np

    from .engine import adapt_spec, backend, model_from_spec, read_spec
    from .io.output import StopOnSignal, check_output, check_saveable
    from .train import Trainer, TrainingDiverged
    if args.out is not None:
        check_output(args.out)
    backend.use(args.backend)
    data = _load_data(args)
    if args.limit:
        data = data.subset(n_train=args.limit)
    kind = "points" if len(data.input_shape) == 1 else "image"
    hp = dict(_DEFAULTS[kind])
    if kind == "image" and data.input_shape[0] == 3:
        hp["lr"] = 0.01   # the ReLU colour net is unstable at 0.05 with momentum 0.9
    if kind == "image":
        from .data import default_lr
        hp["lr"] = default_lr(data.name, hp["lr"])
    for k in ("batch_size", "lr", "optimizer", "momentum"):
        if getattr(args, k) is not None:
            hp[k] = getattr(args, k)
    if hp["optimizer"] == "adam" and args.momentum is None:
        hp["momentum"] = 0.0
    meta = {}
    if args.resume:
        from .io import load_model
        loaded = load_model(args.resume)
        model, meta = loaded.model, loaded.meta
        trainer = Trainer(model, data, loss=args.loss, seed=args.seed, batch_size=hp["batch_size"],
                          optimizer=hp["optimizer"], lr=hp["lr"], momentum=hp["momentum"])
        if meta.get("training"):
            trainer.load_state_dict(meta["training"])
        _apply_resume_settings(trainer, args, hp)
        print(f"resuming {args.resume} at step {trainer.steps:,} (epoch {trainer.epoch}): "
              f"{_optimizer_text(trainer.optimizer)}, batch {trainer.batch_size}",
              file=sys.stderr if args.json else sys.stdout)
    else:
        name = args.model or _default_model(data)
        spec = read_spec(name)
        if name.lower().endswith(".json") and tuple(spec.get("input_shape", ())) != tuple(data.input_shape):
            raise CliError(f"{name}: model input_shape {tuple(spec.get('input_shape', ()))} "
                           f"does not match dataset {data.name!r} inputs {tuple(data.input_shape)}")
        spec = adapt_spec(spec, data.input_shape, data.num_classes)
        model = model_from_spec(spec, seed=args.seed)
        trainer = Trainer(model, data, loss=args.loss, optimizer=hp["optimizer"], lr=hp["lr"],
                          momentum=hp["momentum"], nesterov=args.nesterov,
                          weight_decay=args.weight_decay, l1=args.l1,
                          batch_size=hp["batch_size"], seed=args.seed)
    show = sys.stderr.isatty() and not args.json
    if show or not args.json:
        print(f"training {model.name} ({model.param_count():,} parameters) on {data.name} "
              f"{tuple(data.input_shape)}: {len(data.y_train):,} train / {len(data.y_test):,} test, "
              f"backend {model.B.name}", file=sys.stderr if args.json else sys.stdout)
    progress = _Progress(show, trainer.steps_per_epoch * args.epochs)

    def on_epoch(tr, row):
        if show:
            sys.stderr.write("\n")
        if not args.json:
            print(f"epoch {row['epoch']}: train loss {row['train_loss']:.4f} acc "
                  f"{row['train_accuracy']:.4f} | test loss {row['test_loss']:.4f} acc "
                  f"{row['test_accuracy']:.4f} | {tr.samples / max(tr.seconds, 1e-9):,.0f} samples/s")

    if args.out is not None:
        check_saveable(trainer, data)
    with StopOnSignal() as stop:
        try:
            # overflow on the way to divergence is reported once, as TrainingDiverged
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                summary = trainer.fit(args.epochs, should_stop=stop, on_step=progress,
                                      on_epoch=on_epoch)
        except TrainingDiverged as exc:
            if show:
                sys.stderr.write("\n")
            good = trainer.restore_last_good()
            msg = f"nnviz: {exc}"
            if args.out is not None:
                saved = _save(args.out, trainer, data)
                msg += (f"; saved the last good state (step {good}) to {saved}" if saved
                        else "; the last good state could not be saved")
            print(msg, file=sys.stderr)
            return EXIT_DIVERGED
        if stop():
            if show:
                sys.stderr.write("\n")
            msg = f"nnviz: stopped by {stop.name} at step {trainer.steps:,}"
            if args.out is not None:
                saved = _save(args.out, trainer, data)
                msg += f"; saved the model to {saved}" if saved else "; the model could not be saved"
            print(msg, file=sys.stderr)
            return 128 + stop.signum
        if args.out is not None:
            saved = _save(args.out, trainer, data)
            if saved is None or saved != Path(args.out).expanduser():
                return EXIT_USAGE
            if not args.json:
                print(f"saved {saved}")
    if args.json:
        print(json.dumps(summary))
    return 0


def _save(path, trainer, data):
    """Save, or say in one line why not and where the model went instead. Returns the path."""
    from .io.output import save_with_fallback
    saved, reason = save_with_fallback(path, trainer, data)
    if reason is not None:
        where = f"saved the model to {saved} instead" if saved else \
            "nor a copy in the home or temporary folder: the trained model is lost"
        print(f"nnviz: error: cannot save {path} ({_printable(reason)}); {where}", file=sys.stderr)
    return saved


# ---- eval / info ----------------------------------------------------------------
def cmd_eval(args):
    from .engine import backend
    from .io import load_model
    from .train import Trainer
    backend.use(args.backend)
    loaded = load_model(args.model, input_scaling=args.input_scaling)
    ds_name = args.data or (loaded.meta.get("dataset") or {}).get("name") or (
        "color-shapes" if tuple(loaded.model.input_shape) == (3, 32, 32) else "shapes")
    args.data = ds_name
    data = _load_data(args)
    loss = (loaded.meta.get("training") or {}).get("config", {}).get("loss", "softmax_xent")
    trainer = Trainer(loaded.model, data, loss=loss, batch_size=1)
    t0 = time.perf_counter()
    test_loss, test_acc = trainer.evaluate("test")
    out = {"model": args.model, "data": data.name, "test_loss": test_loss,
           "test_accuracy": test_acc, "samples": int(len(data.y_test)),
           "seconds": round(time.perf_counter() - t0, 3), "backend": loaded.model.B.name}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{args.model} on {data.name}: test loss {test_loss:.4f}, accuracy {test_acc:.4f} "
              f"({len(data.y_test):,} samples)")
    return 0


def cmd_info(args):
    from .io import describe_model
    info = describe_model(args.model, input_scaling=args.input_scaling)
    if args.json:
        print(json.dumps(info, default=str))
    else:   # names come from the file: no escape sequence reaches the terminal
        print("\n".join(_printable(line) for line in info["text"].split("\n")))
    return 0


MAX_MESSAGE = 1000


def _printable(text, limit=None):
    """Control characters (ANSI escapes, carriage returns) shown escaped; long text cut."""
    text = str(text)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "..."
    return text


def cmd_convert(args):
    from pathlib import Path

    from .io import load_model, save_model
    from .io.formats import by_extension
    from .io.keras import keras_problems
    out = Path(args.output).expanduser()
    if out.is_dir():
        raise CliError(f"{args.output}: is a folder; give a file name such as {out / 'model.h5'}")
    loaded = load_model(args.input, input_scaling=args.input_scaling)
    save_model(out, loaded.model, extra=None)
    fmt = by_extension(out, writing=True)
    print(f"wrote {args.output} ({fmt.NAME if fmt else 'nnviz HDF5'}) from {args.input} "
          f"({loaded.meta.get('format')})")
    for note in loaded.meta.get("notes") or []:
        print(f"nnviz: note: {note}", file=sys.stderr)
    problems = keras_problems(loaded.model)
    if out.suffix.lower() in (".h5", ".hdf5") and problems:
        print(f"nnviz: note: Keras cannot open {args.output}: {'; '.join(problems)} "
              f"(nnviz reads it)", file=sys.stderr)
    return 0


def cmd_bench(args):
    from .bench import run_bench
    return run_bench(args)


def _no_display():
    """Linux/BSD without X or Wayland and no QT_QPA_PLATFORM: Qt would abort (exit 134)."""
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return False
    return not any(os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def cmd_gui(args):
    if _no_display():
        raise CliError("no display: DISPLAY and WAYLAND_DISPLAY are not set, so the desktop app "
                       "cannot open a window. Use the commands (nnviz train/eval/info/datasets, "
                       "see 'nnviz -h'), run it inside a desktop session, or set "
                       "QT_QPA_PLATFORM=offscreen to run the app without a screen")
    try:
        from .gui.app import run_app
    except ImportError as e:
        raise CliError(f"the desktop app cannot start: {e}") from None
    lesson = getattr(args, "lesson", None)
    if lesson is not None:
        from .lessons import load_lesson
        load_lesson(lesson)        # a bad file: one line and exit 2 before any window opens
    return run_app(backend=getattr(args, "backend", "auto"), lesson=lesson)


def main(argv=None):
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].lower().endswith(".json"):     # `nnviz lesson.json` opens the lesson
        argv = ["gui", "--lesson", argv[0], *argv[1:]]
    args = parser.parse_args(argv)
    from .engine.process import tune_process
    tune_process()
    cmds = {"train": cmd_train, "eval": cmd_eval, "info": cmd_info, "bench": cmd_bench,
            "convert": cmd_convert, "gui": cmd_gui, None: cmd_gui}
    if args.command == "datasets":
        from .data.cli import run_datasets
        return run_datasets(args)
    # the app keeps Qt's own handling (a Python handler would only run inside a Qt slot)
    old_term = _term_as_interrupt() if args.command not in ("gui", None) else None
    try:
        rc = cmds[args.command](args)
        sys.stdout.flush()       # a closed pipe shows here, inside the handler below
        return rc
    except BrokenPipeError:
        # `nnviz info m.h5 | head`: the reader left; end quietly, as command-line tools do
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except _user_errors() as e:
        msg = str(e) if not isinstance(e, OSError) or not e.filename else f"{e.filename}: {e.strerror}"
        print(f"nnviz: error: {_printable(msg, MAX_MESSAGE)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("nnviz: interrupted", file=sys.stderr)
        return 130
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


def _term_as_interrupt():
    """SIGTERM ends nnviz the way Ctrl-C does: temporaries removed, one line, no traceback."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt
    return signal.signal(signal.SIGTERM, handler)
