"""The app's figures: training speed with the live views against the same Trainer alone
(`python -m nnviz.gui.appbench`, offscreen, in a fresh interpreter per workload). The
value is the ratio app / headless measured in that one process; steps/s, view refreshes
per second and the largest event-loop gap go to the extra figures."""
from __future__ import annotations

import json
import subprocess
import sys
from functools import partial

from .figure import Figure
from .workloads import child_env


def app_ratio(workload, st):
    seconds = 3 if st.quick else 10
    r = subprocess.run([sys.executable, "-m", "nnviz.gui.appbench", "--json", "--seconds",
                        str(seconds), "--only", workload],
                       env=child_env(QT_QPA_PLATFORM="offscreen"), capture_output=True,
                       text=True, timeout=60 + 6 * seconds)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "failed")
    row = json.loads(r.stdout)[0]
    st.extra[f"app_{workload}"] = (
        f"{row['app_steps_per_s']:,.0f} steps/s in the app, {row['headless_steps_per_s']:,.0f} "
        f"headless; views {row['min_refresh_per_s']:.1f}/s (target {row['target_refresh_per_s']:g}),"
        f" largest event-loop gap {row['max_gap_ms']:.0f} ms (target < {row['target_gap_ms']:g});"
        f" {row['note']}")
    return row["ratio"]


FIGURES = [
    Figure(f"app-{w}", "x", f"{what}: app / headless steps/s, views live", "driver",
           partial(app_ratio, w), target=("min", t), quick=False)
    for w, what, t in (("inspector", "CNN inspector, LeNet-5 b64", 0.8),
                       ("playground", "Playground, one network", 0.5),
                       ("compare", "Playground, Compare depths", 0.5))
]
