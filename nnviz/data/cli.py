"""``nnviz datasets list|download``; the lead wires ``add_datasets_parser`` into nnviz/cli.py."""

from __future__ import annotations

import json
import sys
from typing import Any

from .dataset import DatasetError


def add_datasets_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("datasets", help="list or download datasets")
    sub = p.add_subparsers(dest="datasets_command", metavar="{list,download}")
    sub.required = True
    pl = sub.add_parser("list", help="show every dataset name and whether it is present")
    pl.add_argument("--data-dir", default=None, help="data folder (default: $NNVIZ_DATA_DIR or the user data folder)")
    pl.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pd = sub.add_parser("download", help="download mnist, fashion-mnist or cifar10")
    pd.add_argument("name", help="mnist, fashion-mnist or cifar10")
    pd.add_argument("--data-dir", default=None, help="data folder (default: $NNVIZ_DATA_DIR or the user data folder)")
    p.set_defaults(func=run_datasets)
    return p


class _Bar:
    """Text progress bar on stderr."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.last = None
        self.open = False

    def __call__(self, fname, done, total):
        if total:
            frac = min(done / total, 1.0)
            fill = int(frac * 30)
            line = f"\r{fname:<28} [{'#' * fill}{'.' * (30 - fill)}] {frac * 100:5.1f}% {done / 1e6:7.1f} MB"
        else:
            line = f"\r{fname:<28} {done / 1e6:7.1f} MB"
        if line != self.last:
            self.stream.write(line)
            self.open = True
            if total and done >= total:
                self.end_line()
            self.stream.flush()
            self.last = line

    def end_line(self):
        """Finish a bar line left open, so that a message starts on a line of its own."""
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False


def run_datasets(args) -> int:
    from .download import download
    from .registry import default_data_dir, list_datasets

    cmd = getattr(args, "datasets_command", None)
    bar = _Bar()
    data_dir = getattr(args, "data_dir", None) or default_data_dir()
    try:
        if cmd == "list":
            rows = list_datasets(data_dir)
            if getattr(args, "json", False):
                print(json.dumps(rows, indent=2))
                return 0
            print(f"{'name':<14} {'kind':<8} {'present':<8} {'train':>6} {'test':>6} {'shape':<10} where")
            for r in rows:
                shape = "x".join(str(s) for s in r.get("input_shape", [])) or "-"
                print(f"{r['name']:<14} {r['kind']:<8} {'yes' if r['present'] else 'no':<8} "
                      f"{r.get('n_train', '-'):>6} {r.get('n_test', '-'):>6} {shape:<10} {r['where']}")
            return 0
        if cmd == "download":
            paths = download(args.name, data_dir, progress=bar)
            print(f"{args.name}: {len(paths)} file(s) in {paths[0].parent}" if paths else args.name)
            return 0
        raise DatasetError(f"datasets command: expected 'list' or 'download', got {cmd!r}")
    except DatasetError as e:
        bar.end_line()
        print(f"nnviz: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        bar.end_line()
        print("nnviz: download interrupted; run the command again to resume where it stopped",
              file=sys.stderr)
        return 130
