import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Reliability: never block on the "restore the crashed session?" prompt, and keep the
# tests' autosave checkpoints and session marker out of the user's data folder.
os.environ.setdefault("NNVIZ_NO_RESTORE_PROMPT", "1")
if "NNVIZ_AUTOSAVE_DIR" not in os.environ:
    import tempfile as _tempfile
    os.environ["NNVIZ_AUTOSAVE_DIR"] = _tempfile.mkdtemp(prefix="nnviz-test-autosave-")
