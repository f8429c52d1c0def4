"""Each rule of docs/access-policies.md, taken out of ``exchange.policy``, breaks the worked
example that documents it: the examples hold the policy to every rule, rather than merely
agreeing with it. Each rule goes from both faces at once, the filter and the predicate."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Q

from exchange import policy
from tests.signals import test_access_policy_examples as examples

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent.parent


def _every_category(member: Any, categories: Any) -> set[str]:
    return {c.code for c in categories}


REMOVALS: dict[str, tuple[dict[str, Callable[..., Any]], Callable[..., None]]] = {
    "1 active with the agreement signed": (
        {"member_may_read": lambda member: True},
        examples.test_example_1b_without_the_agreement_a_member_reads_nothing,
    ),
    "2 live signals": (
        {"live_q": lambda at=None: Q(), "is_live": lambda signal, at=None: True},
        examples.test_example_2_retraction_hides_the_signal_from_others_not_the_owner,
    ),
    "3 audience": (
        {
            "audience_q": lambda member, group_ids: Q(),
            "in_audience": lambda member, signal, group_ids: True,
        },
        examples.test_example_3_audience_limits_who_matches,
    ),
    "4 categories and attestations": (
        {"receivable_categories": _every_category},
        examples.test_example_4_categories_need_their_attestations,
    ),
    "5 research sees aggregates": (
        {"discloses_values": lambda purpose: True},
        examples.test_example_5_research_sees_aggregates_only,
    ),
    "6 barred kinds": (
        {"member_may_receive": lambda member: policy.member_may_read(member)},
        examples.test_example_6_barred_kinds_never_receive,
    ),
}


def test_every_rule_of_the_policy_is_taken_out_here():
    rows = (ROOT / "docs" / "access-policies.md").read_text().splitlines()
    documented = {
        int(cells[1])
        for cells in (row.split("|") for row in rows)
        if cells[1:2] and cells[1].strip().isdigit()
    }
    assert documented == {int(name.split()[0]) for name in REMOVALS}


@pytest.mark.parametrize("rule", list(REMOVALS))
def test_without_the_rule_its_example_fails(rule, monkeypatch, request):
    replacements, example = REMOVALS[rule]
    for name, replacement in replacements.items():
        monkeypatch.setattr(policy, name, replacement)
    fixtures = {
        name: request.getfixturevalue(name) for name in inspect.signature(example).parameters
    }
    with pytest.raises(AssertionError):
        example(**fixtures)
