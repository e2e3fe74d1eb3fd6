"""The SLO replay of the test demo as golden files, compared byte for byte.

``tests/data/golden_replay/`` holds the SLO review's replay tables over the test demo (seed
7, ``tests.pg.DEMO_SPANS`` spans; the review's defaults: 30 days up to the end of the data),
as Markdown: ``rules.md``, how often each SLO's rules would have fired and for how long, and
``detections.md``, each incident of a service with SLOs beside the rule that would have
caught it. They change only when the data, a burn-rate rule or the catch rule changes, and
the diff says which incidents such a change moves. After an intended change, regenerate them
with

    .venv/bin/python -m tests.slo.test_replay_golden

(it builds the same demo database on a scratch server) and review the diff
(``git diff tests/data/golden_replay``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from obslib.views.slo_review import review_slos
from tests.golden import assert_golden

DATA = Path(__file__).parents[1] / "data" / "golden_replay"
REGENERATE = ".venv/bin/python -m tests.slo.test_replay_golden"


def tables(url: str) -> dict[str, str]:
    """Each golden file's expected text, from the replay as it is now."""
    review = review_slos(url=url)
    return {
        "rules.md": review.replay_summary().markdown() + "\n",
        "detections.md": review.detections().markdown() + "\n",
    }


@pytest.fixture(scope="module")
def demo_tables(demo_db) -> dict[str, str]:
    url, _ = demo_db
    return tables(url)


@pytest.mark.parametrize("name", ["rules.md", "detections.md"])
def test_the_demo_replay_matches_its_golden_file(demo_tables, name: str) -> None:
    """The replay table is the stored Markdown, byte for byte."""
    assert_golden(DATA / name, demo_tables[name], REGENERATE)


def main() -> None:
    """Rewrite the golden files from the test demo, on a scratch server of its own."""
    from tests.pg import POSTGRES

    try:
        url, _ = POSTGRES.demo()
        DATA.mkdir(parents=True, exist_ok=True)
        for name, text in tables(url).items():
            (DATA / name).write_text(text)
            print(f"wrote {DATA / name}")
    finally:
        POSTGRES.close()


if __name__ == "__main__":
    main()
