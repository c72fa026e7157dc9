"""Lessons: prepared scenes for a lecture, and the course's worked examples (Qt-free)."""
from .lesson import (
    WORKSPACES,
    Lesson,
    LessonError,
    LessonStep,
    builtin_lessons,
    lesson_from_json,
    lessons_dir,
    load_lesson,
    save_lesson,
)

__all__ = ["WORKSPACES", "Lesson", "LessonError", "LessonStep", "builtin_lessons", "lesson_from_json",
           "lessons_dir", "load_lesson", "save_lesson"]
