"""The benchmark result as text: a machine line, then one markdown table per section.

Example::

    print(format_report(run_bench(None, quick=True, only=["scaling"], log=print)))
"""

from __future__ import annotations

from typing import Any


def format_report(result: dict[str, Any]) -> str:
    """Markdown-style text of a :func:`~skinlab.bench.run_bench` result."""
    data = result["data"]
    kind = "synthetic demo data" if data["is_demo"] else "dataset"
    lines = [
        f"# skinlab bench{' (quick)' if result['quick'] else ''}",
        "",
        machine_line(result["machine"]),
        f"Data: {data['root']} ({data['images']} images, {kind}); "
        f"total {result['seconds']:.0f} s. Timings are medians of repetitions after a warm-up.",
    ]
    for section in result["sections"]:
        lines += ["", f"## {section['title']}", ""]
        if section["error"]:
            lines.append(f"FAILED: {section['error']}")
            continue
        lines += [
            "| Figure | skinlab | baseline | ratio | note |",
            "| --- | --- | --- | --- | --- |",
        ]
        for row in section["rows"]:
            ratio = "–" if row["ratio"] is None else f"{row['ratio']:.2f}×"
            cells = (
                row["figure"],
                format_value(row["skinlab"], row["unit"]),
                format_value(row["baseline"], row["unit"]),
                ratio,
                row["note"],
            )
            lines.append("| " + " | ".join(cells) + " |")
    if result["ratios"]:
        lines += ["", "Ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in result["ratios"].items())]
    return "\n".join(lines)


def machine_line(machine: dict[str, Any]) -> str:
    """One line: CPU, cores, RAM, notable flags and library versions."""
    flags = ", ".join(machine["flags"]) or "no AVX2"
    return (
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['ram_gb']:g} GB RAM "
        f"({flags}); TensorFlow {machine['tensorflow']}, Keras {machine['keras']}, "
        f"Python {machine['python']}"
    )


def format_value(value: float | None, unit: str) -> str:
    """``1234.5, "img/s"`` -> ``"1,234 img/s"``; three significant figures below 100."""
    if value is None:
        return "–"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{text} {unit}".strip()
