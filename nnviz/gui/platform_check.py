"""Before Qt starts on Linux/X11: name the system libraries its xcb plugin cannot load.

Qt aborts with a message that names at most one library (often not the missing one);
``xcb_problem()`` asks the dynamic linker (``ldd`` on Qt's xcb plugin) which libraries
are missing and returns one line naming them and the apt/dnf command that installs them.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# soname -> (Debian/Ubuntu package, Fedora package) for what Qt's xcb plugin needs
PACKAGES = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
}


def _xcb_plugin() -> Path | None:
    try:
        import PySide6
    except ImportError:
        return None
    p = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return p if p.exists() else None


def missing_libraries(plugin: Path | None = None) -> list[str]:
    """Sonames the xcb plugin needs that the dynamic linker cannot find ([] when all load)."""
    plugin = plugin or _xcb_plugin()
    if plugin is None or not shutil.which("ldd"):
        return []
    try:
        out = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted({m.group(1) for m in re.finditer(r"^\s*(\S+)\s+=>\s+not found", out, re.M)})


def packages_for(sonames: list[str]) -> tuple[list[str], list[str]]:
    """(apt packages, dnf packages) that provide `sonames`."""
    apt, dnf = [], []
    for so in sonames:
        if so in PACKAGES:
            a, d = PACKAGES[so]
        else:      # libxcb-foo.so.N -> libxcb-fooN (Debian) / libxcb (Fedora)
            m = re.match(r"lib(.+)\.so\.(\d+)$", so)
            a = f"lib{m.group(1)}{m.group(2)}".lower() if m else so
            d = "libxcb" if so.startswith("libxcb") else so
        if a not in apt:
            apt.append(a)
        if d not in dnf:
            dnf.append(d)
    return apt, dnf


def message(sonames: list[str]) -> str:
    apt, dnf = packages_for(sonames)
    return (f"nnviz: error: Qt's X11 (xcb) platform plugin cannot load: missing "
            f"{', '.join(sonames)}; install them with 'sudo apt install {' '.join(apt)}' "
            f"(Debian, Ubuntu) or 'sudo dnf install {' '.join(dnf)}' (Fedora)")


def xcb_problem(environ=None) -> str | None:
    """The one-line message when Qt will try xcb and cannot load it, else None."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return None
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return None             # offscreen, wayland, ...: the xcb plugin is not used
    if not platform and not env.get("DISPLAY"):
        return None             # no X display: a different message (and Qt may use Wayland)
    missing = missing_libraries()
    return message(missing) if missing else None
