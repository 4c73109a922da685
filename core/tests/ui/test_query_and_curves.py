"""The runs table's query grammar and the curves' decimation: pure functions, checked directly."""

from __future__ import annotations

import math

import pytest
from mldock.interfaces import Metric
from mldock.ui.curves import decimate
from mldock.ui.query import Condition, QueryError, parse_condition, parse_runs_query


def test_an_empty_query_is_newest_first_50_per_page():
    query = parse_runs_query({})
    assert (query.sort, query.descending, query.page, query.per_page) == ("started", True, 1, 50)


def test_every_part_of_a_query_is_parsed():
    query = parse_runs_query({"status": ["finished,failed"], "where": ["metric:acc>=0.9",
                                                                       "param:model=forest"],
                              "q": [" Abc "], "sort": ["metric:acc"], "order": ["asc"],
                              "page": ["3"], "per_page": ["20"]})
    assert query.statuses == {"finished", "failed"}
    assert query.conditions == (Condition("metric", "acc", ">=", "0.9"),
                                Condition("param", "model", "=", "forest"))
    assert (query.text, query.sort, query.descending, query.page, query.per_page) == (
        "abc", "metric:acc", False, 3, 20)


@pytest.mark.parametrize(("params", "named"), [
    ({"status": ["done"]}, "status 'done'"),
    ({"sort": ["color"]}, "sort 'color'"),
    ({"order": ["up"]}, "order 'up'"),
    ({"page": ["0"]}, "page '0'"),
    ({"page": ["x"]}, "page 'x'"),
    ({"per_page": ["501"]}, "per_page '501'"),
    ({"page": ["1", "2"]}, "page is given 2 times"),
    ({"where": ["accuracy>1"]}, "where 'accuracy>1'"),
    ({"colour": ["red"]}, "unknown query parameter 'colour'"),
])
def test_a_malformed_query_names_the_parameter(params, named):
    with pytest.raises(QueryError) as caught:
        parse_runs_query(params)
    assert named in str(caught.value)


@pytest.mark.parametrize(("text", "value", "holds"), [
    ("param:lr>0.01", 0.1, True), ("param:lr>0.01", 0.001, False),
    ("param:n=10", 10, True), ("param:n=10", "10", True), ("param:n!=10", 9, True),
    ("param:model=forest", "forest", True), ("param:model=forest", "logistic", False),
    ("metric:acc<=0.5", 0.5, True), ("param:flag=true", True, True),
    ("param:model<5", "forest", False), ("metric:acc>0", None, False),
])
def test_conditions_compare_numbers_as_numbers_and_text_as_text(text, value, holds):
    assert parse_condition(text).holds(value) is holds


def test_few_points_are_all_kept():
    points = [Metric("loss", float(i), i) for i in range(100)]
    assert decimate(points, 2000) == points


def test_many_points_keep_first_last_and_every_extreme():
    values = [math.sin(i / 50) for i in range(100_000)]
    values[31_337] = 50.0  # a spike a stride sample would miss
    values[77_777] = -50.0
    points = [Metric("loss", v, i) for i, v in enumerate(values)]
    kept = decimate(points, 2000)
    assert len(kept) <= 2000
    assert kept[0] == points[0] and kept[-1] == points[-1]
    steps = [p.step for p in kept]
    assert steps == sorted(steps)
    assert 31_337 in steps and 77_777 in steps
    assert max(p.value for p in kept) == 50.0 and min(p.value for p in kept) == -50.0


def test_non_finite_values_do_not_break_decimation():
    points = [Metric("loss", math.nan if i % 7 == 0 else float(i), i) for i in range(10_000)]
    kept = decimate(points, 100)
    assert len(kept) <= 100 and kept[-1].step == 9_999
