"""Machine-readable reports of a run: the JSON summary and a JUnit XML file for CI."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from flowml.runs import RunSummary


def summary_json(summary: RunSummary) -> str:
    return json.dumps(summary.to_json(), indent=2)


def junit_xml(summary: RunSummary) -> str:
    """One test case per node: failed and killed nodes are failures, skipped ones skipped."""
    failures = sum(r.status in ("failed", "killed") for r in summary.results)
    skipped = sum(r.status == "skipped" for r in summary.results)
    suite = ET.Element("testsuite", name=summary.pipeline, tests=str(len(summary.results)),
                       failures=str(failures), skipped=str(skipped), time=f"{summary.duration_s:.3f}")
    for r in summary.results:
        case = ET.SubElement(suite, "testcase", classname=summary.pipeline, name=r.name, time=f"{r.duration_s:.3f}")
        if r.status in ("failed", "killed"):
            ET.SubElement(case, "failure", message=r.error or r.status).text = "; ".join(r.reasons)
        elif r.status == "skipped":
            ET.SubElement(case, "skipped", message="; ".join(r.reasons))
        else:
            ET.SubElement(case, "system-out").text = f"{r.status}: {'; '.join(r.reasons)}"
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)
