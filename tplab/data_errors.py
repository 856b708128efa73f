"""The one error the course's data sets raise when they cannot be read.

Why one class: lesson 02's SMS texts (`tplab.sms_spam`) and lesson 05's digits
(`tplab.digits`) come from installed packages, and either may be missing. A caller (a lesson
cell, `tplab doctor`, a test) that catches `DataSetError` catches both, and each message says
what to run to fix it.
"""
from __future__ import annotations

__all__ = ["DataSetError"]


class DataSetError(RuntimeError):
    """A course data set is missing or unreadable; the message says what to run."""
