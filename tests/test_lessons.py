"""Lesson files: read, checked field by field, written atomically; the built-in lessons hold
to the numbers their captions state (computed by the engine)."""
import json

import numpy as np
import pytest

from nnviz.lessons import Lesson, LessonError, LessonStep, builtin_lessons, load_lesson, save_lesson
from nnviz.lessons.examples import evaluate, transposed_output

# keys that only a trained Playground scene can show: tests/test_gui_lessons.py checks them
PLAYGROUND_KEYS = {"boundary_is_linear", "train_accuracy", "weights_still_growing", "greyed_units",
                   "test_loss_no_dropout_min", "test_loss_no_dropout", "test_loss_dropout"}


def test_builtin_lessons_load_and_cover_the_course_topics():
    lessons = builtin_lessons()
    assert len(lessons) >= 7
    titles = {l.title for l in lessons}
    assert {"Edge detection", "Pooling", "Convolution arithmetic", "Depth and decision boundaries"} <= titles
    for l in lessons:
        assert l.steps and all(s.caption for s in l.steps), l.title


@pytest.mark.parametrize("lesson", builtin_lessons(), ids=lambda l: l.title)
def test_builtin_lesson_numbers_equal_the_engine(lesson):
    for i, step in enumerate(lesson.steps):
        got = evaluate(step)
        for key, want in step.expect.items():
            if key in PLAYGROUND_KEYS:
                continue
            assert key in got, f"{lesson.title} step {i}: nothing computes {key!r}"
            if isinstance(want, dict):     # a bound the caption states: "at least 95%"
                assert want.get("min", -np.inf) <= got[key] <= want.get("max", np.inf), \
                    f"{lesson.title} step {i}: {key} is {got[key]}, caption says {want}"
                continue
            assert got[key] == want, f"{lesson.title} step {i}: {key} is {got[key]}, caption says {want}"


def test_worked_examples_of_the_notes():
    step = LessonStep("convlab", state={"input": "worked", "kernel": "vertical edge"})
    assert evaluate(step)["conv_output_row0"] == [-5, -4, 0, 8]
    step = LessonStep("convlab", state={"pool_mode": "max", "pool_k": 2})
    assert evaluate(step)["pool_output"] == [[9, 2], [6, 3]]
    # the notes' transposed convolution: 3x3 input, stride 2, padding 1, F = 3 -> 5x5
    assert transposed_output(3, 3, 1, 2) == 5


def test_save_and_load_round_trip(tmp_path):
    lesson = Lesson(title="Mine", topic="Week 3", steps=[
        LessonStep("playground", caption="look", question="why?", state={"dataset": "xor", "hidden": [4]}),
        LessonStep("convlab", caption="edges", state={"kernel": "Sobel vertical"}, model="m.h5")])
    p = save_lesson(tmp_path / "week3.json", lesson)
    back = load_lesson(p)
    assert back.title == "Mine" and back.topic == "Week 3"
    assert [s.state for s in back.steps] == [s.state for s in lesson.steps]
    assert back.steps[1].model_path(p) == tmp_path / "m.h5"
    assert [x.name for x in tmp_path.iterdir()] == ["week3.json"]     # no temporary left


@pytest.mark.parametrize("doc, field", [
    ({"nnviz_lesson": 2, "steps": []}, "nnviz_lesson"),
    ({"nnviz_lesson": 1, "steps": []}, "steps"),
    ({"nnviz_lesson": 1, "steps": [{"workspace": "kitchen"}]}, "steps[0].workspace"),
    ({"nnviz_lesson": 1, "steps": [{"workspace": "convlab", "state": 3}]}, "steps[0].state"),
    ({"nnviz_lesson": 1, "steps": [{"workspace": "convlab", "colour": "red"}]}, "steps[0]: unknown field"),
    ({"nnviz_lesson": 1, "steps": [{"workspace": "convlab", "caption": 5}]}, "steps[0].caption"),
    ({"nnviz_lesson": 1, "title": ["x"], "steps": [{"workspace": "convlab"}]}, "title"),
])
def test_bad_lessons_name_the_field(tmp_path, doc, field):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(LessonError) as e:
        load_lesson(p)
    assert field in str(e.value) and str(p) in str(e.value)
    assert "\n" not in str(e.value)


def test_unreadable_lessons(tmp_path):
    with pytest.raises(LessonError, match="no such lesson file"):
        load_lesson(tmp_path / "missing.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(LessonError, match="malformed JSON at line 1"):
        load_lesson(tmp_path / "x.json")
    with pytest.raises(LessonError, match="unknown kernel"):
        evaluate(LessonStep("convlab", state={"kernel": "fancy"}))
