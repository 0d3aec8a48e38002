"""JUnit XML of a verify run: one test case per lottery, failures carrying the evidence.

The shape (testsuites > testsuite > testcase with failure/error) is the one Jenkins,
GitLab and GitHub's JUnit reporters read.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from dualwrite.audit.verify import Checked, VerifyReport

SUITE = "dualwrite.verify"


def render(report: VerifyReport) -> bytes:
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
    rows: list[tuple[int, object]] = [(c.diff.lottery_id, c) for c in report.checked]
    rows += [(u.lottery_id, u) for u in report.unchecked]
    for lottery_id, r in sorted(rows, key=lambda x: x[0]):
        case = ET.SubElement(suite, "testcase", classname=SUITE, name=f"lottery {lottery_id}", time="0")
        if isinstance(r, Checked):
            d = r.diff
            if not r.passed:
                msg = f"{d.state.value}: {d.reason}" + (f" ({r.note})" if r.note else "")
                fail = ET.SubElement(case, "failure", message=msg, type=d.state.value)
                fail.text = json.dumps(d.to_json(), indent=2, ensure_ascii=False)
            elif r.note or d.state.value != "ok":
                out = ET.SubElement(case, "system-out")
                out.text = f"{d.state.value}: {d.reason} ({r.note})"
        else:
            err = ET.SubElement(case, "error", message=f"could not be checked: {r.error}", type=r.error_type)
            err.text = r.error
    ET.indent(root)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"
