"""JUnit XML of a verify run: one test case per lottery, failures carrying the evidence.

The shape (testsuites > testsuite > testcase with failure/error) is the one Jenkins,
GitLab and GitHub's JUnit reporters read.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from dualwrite.audit.diff import State
from dualwrite.audit.verify import Checked, Unchecked, VerifyReport
from dualwrite.words import count

SUITE = "dualwrite.verify"


#: the most differing fields a failure message names (the failure's text has them all)
MESSAGE_FIELDS = 4
#: a value longer than this is cut in a message (``…``); the failure's text has it whole
MESSAGE_VALUE_CHARS = 80


def _short(value: object, human: str) -> str:
    """A field's value as Move JSON writes it (``77816``, not the table's ``77,816``: a message separates
    with commas), cut to ``MESSAGE_VALUE_CHARS``."""
    if value is None and human:
        text = human
    else:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= MESSAGE_VALUE_CHARS else text[:MESSAGE_VALUE_CHARS - 1] + "…"


def failure_message(c: Checked) -> str:
    """One line a CI page shows for a failing lottery, with both sides of what differs:
    ``field_drift: tickets_sold: history 77816, legacy 5``."""
    d = c.diff
    if d.state is State.FIELD_DRIFT and d.fields:
        shown = "; ".join(f"{f.field}: history {_short(f.history_json, f.history)}, legacy {_short(f.legacy_json, f.legacy)}"
                          for f in d.fields[:MESSAGE_FIELDS])
        more = len(d.fields) - MESSAGE_FIELDS
        msg = f"{d.state.value}: {shown}" + (f"; and {count(more, 'more field')}" if more > 0 else "")
    elif d.state is State.HASH_MISMATCH:
        msg = (f"{d.state.value}: history hash {d.history_hash}, legacy bytes hash {d.legacy_bytes_hash}, "
               f"legacy archive_hash {d.legacy_archive_hash}")
    elif d.state is State.PENDING:
        msg = f"{d.state.value}: {d.reason}: expected {d.expected_hash}, archived {d.history_hash or 'nothing'}"
    else:
        msg = f"{d.state.value}: {d.reason}"
    return msg + (f" ({c.note})" if c.note else "")


def render(report: VerifyReport) -> bytes:
    """The XML: one testsuite, one testcase per lottery in ascending id order, each with the time its
    own check took (its reads and diff, in its worker: with ``--jobs N`` they overlap, so their sum
    can exceed the suite's wall time, as with pytest-xdist)."""
    failures = len(report.failing)
    errors = len(report.unchecked)
    total = len(report.checked) + errors
    root = ET.Element("testsuites", name="dualwrite", tests=str(total), failures=str(failures), errors=str(errors),
                      time=f"{report.duration_s:.3f}")
    suite = ET.SubElement(root, "testsuite", name=SUITE, tests=str(total), failures=str(failures),
                          errors=str(errors), skipped="0", time=f"{report.duration_s:.3f}",
                          timestamp=report.started_at.strftime("%Y-%m-%dT%H:%M:%S"))
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="backend", value=report.backend)
    # how many were really checked: a suite of zero test cases must not read as a pass
    ET.SubElement(props, "property", name="checked", value=str(len(report.checked)))
    ET.SubElement(props, "property", name="exit_code", value=str(int(report.exit_code)))
    if report.empty:
        ET.SubElement(props, "property", name="empty", value="allowed" if report.allow_empty else "failed")
    rows: list[tuple[int, Checked | Unchecked]] = [(c.diff.lottery_id, c) for c in report.checked]
    rows += [(u.lottery_id, u) for u in report.unchecked]
    for lottery_id, r in sorted(rows, key=lambda x: x[0]):
        case = ET.SubElement(suite, "testcase", classname=SUITE, name=f"lottery {lottery_id}",
                             time=f"{r.duration_s:.3f}")
        if isinstance(r, Checked):
            d = r.diff
            if not r.passed:
                fail = ET.SubElement(case, "failure", message=failure_message(r), type=d.state.value)
                fail.text = json.dumps(d.to_json(), indent=2, ensure_ascii=False)
            elif r.note or d.state.value != "ok":
                out = ET.SubElement(case, "system-out")
                out.text = f"{d.state.value}: {d.reason} ({r.note})"
        else:
            err = ET.SubElement(case, "error", message=f"could not be checked: {r.error}", type=r.error_type)
            err.text = r.error
    ET.indent(root)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"
