"""Lesson files: a prepared scene (or a sequence of them) for a lecture, as small JSON.

A lesson names a workspace and its whole state (data and its settings, network,
hyper-parameters, seed, views), an optional trained model file beside it, and a caption
(what to look at, a question for the room). The workspaces apply the state; this module
only reads, checks and writes the file, so that a bad file fails with one line naming the
field before anything in the app changes.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nnviz.io.atomic import atomic_path

FORMAT = 1
WORKSPACES = ("playground", "inspector", "convlab", "backprop", "experiments")
MAX_BYTES = 1 << 20      # a lesson is a page of text; refuse anything far larger
MAX_STEPS = 200


class LessonError(ValueError):
    """A lesson file is unreadable or a field is wrong; the message names file and field."""


@dataclass
class LessonStep:
    workspace: str
    caption: str = ""
    question: str = ""
    state: dict[str, Any] = field(default_factory=dict)
    model: str | None = None          # a saved model beside the lesson file (relative path)
    expect: dict[str, Any] = field(default_factory=dict)   # the numbers the caption states

    def model_path(self, lesson_path: Path | None) -> Path | None:
        if not self.model:
            return None
        p = Path(self.model)
        return p if p.is_absolute() or lesson_path is None else Path(lesson_path).parent / p


@dataclass
class Lesson:
    title: str
    steps: list[LessonStep]
    topic: str = "My lessons"
    path: Path | None = None

    def to_json(self) -> dict[str, Any]:
        steps = []
        for s in self.steps:
            d = {k: v for k, v in asdict(s).items() if v not in ("", None, {}, [])}
            d["workspace"] = s.workspace
            steps.append(d)
        return {"nnviz_lesson": FORMAT, "title": self.title, "topic": self.topic, "steps": steps}


# ---- checks -----------------------------------------------------------------------------
def _text(v: Any, where: str) -> str:
    if not isinstance(v, str):
        raise LessonError(f"{where}: expected text, got {type(v).__name__}")
    if len(v) > 5000:
        raise LessonError(f"{where}: text longer than 5000 characters")
    return v


def _finite(v: Any) -> bool:
    if isinstance(v, bool):
        return True
    if isinstance(v, (int, float)):
        return math.isfinite(v)
    if isinstance(v, list):
        return all(_finite(x) for x in v)
    if isinstance(v, dict):
        return all(_finite(x) for x in v.values())
    return True


def _step(d: Any, where: str) -> LessonStep:
    if not isinstance(d, dict):
        raise LessonError(f"{where}: expected an object, got {type(d).__name__}")
    known = {"workspace", "caption", "question", "state", "model", "expect"}
    extra = sorted(set(d) - known)
    if extra:
        raise LessonError(f"{where}: unknown field(s) {extra}; known: {sorted(known)}")
    ws = d.get("workspace")
    if ws not in WORKSPACES:
        raise LessonError(f"{where}.workspace: expected one of {', '.join(WORKSPACES)}, got {ws!r}")
    state = d.get("state", {})
    if not isinstance(state, dict):
        raise LessonError(f"{where}.state: expected an object, got {type(state).__name__}")
    if not _finite(state):
        raise LessonError(f"{where}.state: numbers must be finite")
    expect = d.get("expect", {})
    if not isinstance(expect, dict):
        raise LessonError(f"{where}.expect: expected an object, got {type(expect).__name__}")
    model = d.get("model")
    if model is not None:
        _text(model, f"{where}.model")
    return LessonStep(workspace=ws, caption=_text(d.get("caption", ""), f"{where}.caption"),
                      question=_text(d.get("question", ""), f"{where}.question"),
                      state=state, model=model, expect=expect)


def lesson_from_json(d: Any, source: str = "lesson") -> Lesson:
    """Check a parsed lesson; every problem is a LessonError naming the field."""
    if not isinstance(d, dict):
        raise LessonError(f"{source}: a lesson must be a JSON object")
    version = d.get("nnviz_lesson")
    if version != FORMAT:
        raise LessonError(f"{source}: nnviz_lesson: expected {FORMAT}, got {version!r} "
                          "(not an nnviz lesson file, or one from a newer nnviz)")
    steps = d.get("steps")
    if not isinstance(steps, list) or not steps:
        raise LessonError(f"{source}: steps: expected a non-empty list")
    if len(steps) > MAX_STEPS:
        raise LessonError(f"{source}: steps: at most {MAX_STEPS} steps, got {len(steps)}")
    title = _text(d.get("title", ""), f"{source}: title") or "Untitled lesson"
    topic = _text(d.get("topic", "My lessons"), f"{source}: topic")
    return Lesson(title=title, topic=topic,
                  steps=[_step(s, f"{source}: steps[{i}]") for i, s in enumerate(steps)])


def load_lesson(path: str | Path) -> Lesson:
    p = Path(path).expanduser()
    try:
        if not p.is_file():
            raise LessonError(f"{p}: no such lesson file" if not p.exists() else f"{p}: not a regular file")
        if p.stat().st_size > MAX_BYTES:
            raise LessonError(f"{p}: {p.stat().st_size} bytes is too large for a lesson (at most {MAX_BYTES})")
        d = json.loads(p.read_text(encoding="utf-8"))
    except LessonError:
        raise
    except json.JSONDecodeError as e:
        raise LessonError(f"{p}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except (OSError, UnicodeDecodeError, RecursionError) as e:
        raise LessonError(f"{p}: cannot read: {type(e).__name__}: {str(e)[:200]}") from None
    lesson = lesson_from_json(d, str(p))
    lesson.path = p
    return lesson


def save_lesson(path: str | Path, lesson: Lesson) -> Path:
    """Write atomically (temporary file, then rename): an old lesson is never half-overwritten."""
    p = Path(path).expanduser()
    text = json.dumps(lesson.to_json(), indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    lesson_from_json(json.loads(text), str(p))      # never write what we could not read back
    with atomic_path(p) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    lesson.path = p
    return p


def lessons_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "resources" / "lessons"


def builtin_lessons() -> list[Lesson]:
    """The lessons shipped in resources/lessons/, ordered by file name (01-..., 02-...)."""
    return [load_lesson(p) for p in sorted(lessons_dir().glob("*.json"))]
