"""The operator console's pages (`/ui`): server-rendered, no script, no asset from another host,
the payer's pages' strict Content-Security-Policy. Templates in `templates/`, the stylesheet in
`static/` (package data, pyproject.toml)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from pool.console.service import Session

TEMPLATES = Path(__file__).parent / "templates"
STYLESHEET = (Path(__file__).parent / "static" / "console.css").read_bytes()
STYLESHEET_VERSION = hashlib.sha256(STYLESHEET).hexdigest()[:12]
CSS_URL = f"/ui/static/console.css?v={STYLESHEET_VERSION}"
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True))

NAV = (
    ("/ui", "Overview"),
    ("/ui/deposits", "Deposits"),
    ("/ui/references", "References"),
    ("/ui/orders", "Orders"),
    ("/ui/webhooks", "Webhooks"),
    ("/ui/alerts", "Alerts"),
    ("/ui/reconciliation", "Reconciliation"),
    ("/ui/pool", "Address pool"),
    ("/ui/audit", "Audit log"),
)


def render(
    template: str, *, session: Session | None, here: str = "", network: str = "", **values: Any
) -> str:
    return _env.get_template(template).render(
        session=session, nav=NAV, here=here, network=network, css=CSS_URL, **values
    )


def bar_chart(days: list[tuple[str, int]], *, label: str) -> Markup:
    """A server-drawn SVG bar chart of daily counts (no script, no external asset); its
    `<title>` and `<desc>` say what it shows for a screen reader."""
    width, height, bottom = 600, 160, 20
    top = max((count for _, count in days), default=0) or 1
    step = width / max(1, len(days))
    bars = []
    for n, (day, count) in enumerate(days):
        bar = (height - bottom - 10) * count / top
        x, y = n * step + 1, height - bottom - bar
        bars.append(
            Markup(
                '<rect class="bar" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}">'
                "<title>{}: {}</title></rect>"
            ).format(x, y, step - 2, bar, day, count)
        )
    first, last = (days[0][0], days[-1][0]) if days else ("", "")
    return Markup(
        '<svg viewBox="0 0 {w} {h}" role="img" aria-labelledby="{id}-t {id}-d">'
        '<title id="{id}-t">{label}</title><desc id="{id}-d">{desc}</desc>{bars}'
        '<line class="axis" x1="0" y1="{base}" x2="{w}" y2="{base}"/>'
        '<text x="0" y="{h}">{first}</text><text x="{w}" y="{h}" text-anchor="end">{last}</text>'
        '<text x="0" y="10">{top}</text></svg>'
    ).format(
        w=width,
        h=height - 4,
        id=label.split()[0].lower(),
        label=label,
        desc=f"{sum(c for _, c in days)} in {len(days)} days, at most {top} a day",
        bars=Markup("").join(bars),
        base=height - bottom,
        first=first,
        last=last,
        top=top,
    )
