"""Charts drawn on the server as SVG geometry, rendered by `templates/compliance/_chart.html`.

No chart library and no script: bars are rectangles computed here, and each chart also
carries its numbers as a table, for screen readers and for anyone who prefers to read.
Colours are the Okabe-Ito palette, told apart by people with colour-blindness.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
MET, MISSED, OPEN = "#009E73", "#D55E00", "#999999"

WIDTH = 480
PLOT_LEFT = 40
PLOT_TOP = 12
PLOT_HEIGHT = 180
AXIS_SPACE = 28


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass
class Chart:
    """Everything the template draws, plus the same numbers as a table."""

    chart_id: str
    title: str
    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    gridlines: list[Label] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.bars


def _short(category: str) -> str:
    """Dates as MM-DD under a column (the table has the full date); other names whole."""
    is_date = len(category) == 10 and category[4] == "-" and category[7] == "-"
    return category[5:] if is_date else category[:14]


def _nice_max(value: int) -> int:
    """A round axis maximum at or above `value` whose quarters are whole numbers
    (4, 8, 20, 40, 80, 200, ...), so the four gridlines are labelled with counts."""
    step = 1
    while True:
        for m in (4, 8, 20):
            if value <= m * step:
                return m * step
        step *= 10


def stacked_columns(
    chart_id: str,
    title: str,
    categories: list[str],
    series: dict[str, list[int]],
    colours: dict[str, str] | None = None,
) -> Chart:
    """One column per category, stacked by series (e.g. days stacked by agency)."""
    colours = colours or {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    totals = [sum(values[i] for values in series.values()) for i in range(len(categories))]
    top = _nice_max(max(totals, default=0) or 1)
    chart = Chart(chart_id, title, WIDTH, PLOT_TOP + PLOT_HEIGHT + AXIS_SPACE)
    chart.legend = [(colours[name], name) for name in series]
    chart.header = ["", *series, "total"]
    slot = (WIDTH - PLOT_LEFT - 8) / max(len(categories), 1)
    bar_width = min(slot * 0.7, 60)
    for step in range(5):
        value = top * step / 4
        y = PLOT_TOP + PLOT_HEIGHT - PLOT_HEIGHT * value / top
        chart.gridlines.append(Label(PLOT_LEFT - 6, y, f"{value:g}", "end"))
    for i, category in enumerate(categories):
        x = PLOT_LEFT + slot * i + (slot - bar_width) / 2
        base: float = PLOT_TOP + PLOT_HEIGHT
        for name, values in series.items():
            if not values[i]:
                continue
            height = PLOT_HEIGHT * values[i] / top
            base -= height
            chart.bars.append(
                Bar(x, base, bar_width, height, colours[name], f"{category} · {name}: {values[i]}")
            )
        chart.labels.append(Label(x + bar_width / 2, PLOT_TOP + PLOT_HEIGHT + 16, _short(category)))
        chart.rows.append([category, *(str(v[i]) for v in series.values()), str(totals[i])])
    return chart


def horizontal_bars(chart_id: str, title: str, items: list[tuple[str, int]]) -> Chart:
    """One bar per item, longest first (e.g. refusals by policy)."""
    row_height, label_space = 28, 190
    chart = Chart(chart_id, title, WIDTH, PLOT_TOP + row_height * max(len(items), 1) + 8)
    chart.header = ["", "count"]
    top = max((v for _, v in items), default=0) or 1
    span = WIDTH - label_space - 48
    for i, (label, value) in enumerate(items):
        y = PLOT_TOP + i * row_height
        width = span * value / top
        chart.bars.append(
            Bar(label_space, y, width, row_height - 8, PALETTE[0], f"{label}: {value}")
        )
        chart.labels.append(Label(label_space - 6, y + row_height / 2, label[:28], "end"))
        chart.labels.append(Label(label_space + width + 6, y + row_height / 2, str(value), "start"))
        chart.rows.append([label, str(value)])
    return chart
