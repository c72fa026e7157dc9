"""Kernel warm-up behind the window: progress, groups in order, waiting workspaces."""
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from nnviz.gui import kernels


def test_warmer_reports_progress_and_runs_waiting_work(qtbot):
    w = kernels.KernelWarmer(groups=["mlp", "cnn"])
    seen, ran = [], []
    w.progress.connect(lambda text, done, total: seen.append((text, done, total)))
    w.when_ready("cnn", lambda: ran.append("cnn"))
    w.when_ready("nosuch", lambda: ran.append("nosuch"))      # not warmed: runs soon
    with qtbot.waitSignals([w.group_done, w.group_done], timeout=300000):
        w.start()
    qtbot.waitUntil(lambda: "cnn" in ran and seen and seen[-1][0] == "Kernels ready",
                    timeout=10000)
    assert w.done == {"mlp", "cnn"} and ran.count("cnn") == 1 and "nosuch" in ran
    assert [s[1:] for s in seen] == [(0, 2), (1, 2), (2, 2)]
    assert "Playground" in seen[0][0] and "convolutions" in seen[1][0]
    w.when_ready("mlp", lambda: ran.append("late"))           # already warm: runs soon
    qtbot.waitUntil(lambda: "late" in ran, timeout=5000)


def test_when_ready_without_a_warmer_runs_soon(qtbot):
    kernels.install(None)
    ran = []
    kernels.when_ready("cnn", lambda: ran.append(1))
    qtbot.waitUntil(lambda: ran == [1], timeout=5000)
