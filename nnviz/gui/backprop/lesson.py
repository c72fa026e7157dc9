"""Lesson files for the Backprop lab: the scene (nnviz.backprop.scene) plus what is on screen --
the step ("∂L/∂w₅", "dL/dw5", "update" or a number), the page, the drawing, the vanishing-gradient depth,
and the activation page's function, leaky slope, x and chain length."""
from __future__ import annotations

from nnviz.backprop import activations as act
from nnviz.backprop.net import LabError
from nnviz.backprop.scene import scene_from_state, scene_state
from nnviz.lessons import LessonError

PAGES = ("graph", "batch", "vanishing", "activations")
_PLAIN = str.maketrans({**{chr(0x2080 + i): str(i) for i in range(10)}, "\u2202": "d", " ": ""})


def _plain(title: str) -> str:
    return title.translate(_PLAIN)


class BackpropAdapter:
    workspace = "backprop"

    def capture(self, ws) -> dict:
        ws.ensure_loaded()
        state = scene_state(ws.net, ws.X, ws.T, ws.lr)
        cur = ws.current_step()
        state.update(step=cur.title if cur is not None else 0, page=PAGES[ws.pages.currentIndex()],
                     detailed=ws.detailed_box.isChecked(), example=ws.example + 1,
                     depth=ws.vanishing.depth.value(), **ws.activations.state())
        return state

    def apply(self, ws, state: dict) -> None:
        ws.ensure_loaded()
        try:
            scene = scene_from_state(state)
            shown = ws.activations.state()
            shown.update((k, state[k]) for k in shown if k in state)
            act.state_numbers(shown)          # checks function, slope, x and chain
        except LabError as e:
            raise LessonError(str(e)) from None
        for key in ("x", "slope"):            # the spin boxes hold 2 decimals
            if round(shown[key], 2) != shown[key]:
                raise LessonError(f"state.{key}: at most 2 decimals, got {shown[key]!r}")
        n = len(scene.x)
        example = state.get("example", 1)
        if isinstance(example, bool) or not isinstance(example, int) or not 1 <= example <= n:
            raise LessonError(f"state.example: expected a whole number from 1 to {n}, got {example!r}")
        page = state.get("page", "graph")
        if page not in PAGES:
            raise LessonError(f"state.page: expected one of {', '.join(PAGES)}, got {page!r}")
        depth = state.get("depth", ws.vanishing.depth.value())
        if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= ws.vanishing.depth.maximum():
            raise LessonError(f"state.depth: expected a whole number from 1 to {ws.vanishing.depth.maximum()}, "
                              f"got {depth!r}")
        detailed = state.get("detailed")
        ws.load_scene(scene.net, scene.x, scene.t, scene.lr, example=example - 1,
                      detailed=None if detailed is None else bool(detailed))
        ws.go_to(self._position(ws, state.get("step", 0)))
        ws.vanishing.depth.setValue(depth)
        ws.activations.set_state(**shown)
        ws.pages.setCurrentIndex(PAGES.index(page))

    @staticmethod
    def _position(ws, step) -> int:
        if isinstance(step, int) and not isinstance(step, bool):
            if not 0 <= step <= len(ws.steps):
                raise LessonError(f"state.step: expected 0 to {len(ws.steps)}, got {step}")
            return step
        if step == "update":
            return len(ws.steps)
        if isinstance(step, str):
            want = _plain(step)
            for i, s in enumerate(ws.steps):
                if _plain(s.title) == want:
                    return i + 1
        raise LessonError(f"state.step: expected a step number or title such as 'z_h1' or 'dL/dw5', "
                          f"got {step!r}")
