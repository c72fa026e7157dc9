"""`nnviz bench`: training and inference speed of the engine, beside PyTorch.

Each engine runs in a long-lived worker process of its own: the "nnviz" worker never
imports torch and the "torch" worker never imports numba or nnviz.engine. PyTorch's wheel
ships its own libgomp.so.1, the soname of the system libgomp that Numba's OpenMP threading
layer links to; in one process the loader would hand Numba torch's copy, and libgomp reads
its wait policy once, when it is loaded, so nnviz would run on a runtime set up by torch's
import rather than the one a user's process (which never imports torch) gets.

This process (the CLI) only drives: for each figure it has both workers build and warm up
their model and size a block of calls to about `block_s` seconds, then asks them in turn
(nnviz, PyTorch, nnviz, ...) to time one block, so that other load on the machine hits both
alike. Each figure is the median over the repeats; warm-up is not counted. Both use the
same number of threads: Numba's default (NUMBA_NUM_THREADS) and `torch.set_num_threads`.

Modules: `figures` (the catalogue: name -> Figure, and `--only` selection), `engine_figures`
(the figures timed beside PyTorch), `extra` (data, start-up, memory), `workloads` (models and
data both workers build from), `nnviz_side` / `torch_side` (what each worker runs),
`worker` (the request/reply protocol), `report` (table and machine), `run` (the driver).
Nothing here imports numba, torch or nnviz.engine at import time: the workers choose.
"""
from .run import run_bench
from .workloads import LENET5_RELU, TINY_MLP

__all__ = ["run_bench", "LENET5_RELU", "TINY_MLP"]
