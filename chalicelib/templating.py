"""Jinja2 environment for pages and emails (autoescaped), built on first use."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from chalicelib import formatting

if TYPE_CHECKING:
    from jinja2 import Environment


@lru_cache(maxsize=1)
def environment() -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("chalicelib", "templates"),
        autoescape=select_autoescape(["html"], default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["cop"] = formatting.cop
    env.filters["local_datetime"] = formatting.local_datetime
    env.filters["long_date"] = formatting.long_date
    env.filters["local_time"] = formatting.local_time
    env.filters["tel"] = formatting.tel_uri
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)
