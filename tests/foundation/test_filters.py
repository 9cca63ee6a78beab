"""The filter vocabulary: validation once, the HTTP round trip, vocabulary checks."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campfire import ValidationError
from campfire.catalog.filters import Vocabulary, build_query, query_from_params
from campfire.flags import DQFlags

VOCAB = Vocabulary(
    fields=frozenset({"cosmos", "uds"}),
    programs={"ember-uds": 4233, "ember-deep": 6541},
    gratings=frozenset({"PRISM", "G395M"}),
    observations=frozenset({"ember_uds_p4"}),
    tags=frozenset({"lrd", "blagn"}),
)


def test_case_and_names_are_normalised():
    q = build_query("objects", fields=["COSMOS"], gratings=["prism"], redshift_quality=["probable", 4],
                    programs=["EMBER-UDS", 6541, "4233"])
    assert q.fields == ("cosmos",)
    assert q.gratings == ("PRISM",)
    assert q.redshift_quality == (3, 4)
    resolved = q.resolve(VOCAB)
    assert resolved.programs == (4233, 6541)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fields": ["mars"]}, r"fields: unknown field 'mars'; allowed: cosmos, uds"),
        ({"gratings": ["G999"]}, r"gratings: unknown grating 'G999'"),
        ({"programs": ["nope"]}, r"programs: unknown program 'nope'"),
        ({"programs": [1]}, r"programs: unknown program id 1"),
        ({"tags": ["zzz"]}, r"tags: unknown tag 'zzz'"),
        ({"observations": ["x"]}, r"observations: unknown observation"),
    ],
)
def test_unknown_values_against_the_vocabulary(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        build_query("objects", **kwargs).resolve(VOCAB)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sort": "password"}, r"sort: unknown column 'password'"),
        ({"sort_dir": "up"}, r"sort_dir: expected 'asc' or 'desc'"),
        ({"redshift_range": (5, 4)}, r"redshift_range: min \(5\) is greater than max \(4\)"),
        ({"redshift_range": 5}, r"redshift_range: expected \(min, max\)"),
        ({"cone_search": (150.0, 2.0, "wide")}, r"cone_search: expected a number"),
        ({"cone_search": (150.0, 2.0, -1)}, r"cone_search: radius"),
        ({"cone_search": (400.0, 2.0, 1)}, r"cone_search: ra"),
        ({"redshift_quality": ["great"]}, r"redshift_quality: unknown quality 'great'"),
        ({"redshift_quality": [7]}, r"redshift_quality: expected an int 0-4"),
        ({"limit": -1}, r"limit"),
        ({"offset": "a"}, r"offset"),
        ({"inspected_only": "yes"}, r"inspected_only: expected True, False or None"),
        ({"dq_flags": "LOUD"}, r"dq_flags.*unknown flag"),
        ({"fieldz": ["cosmos"]}, r"unknown parameter fieldz; allowed: fields"),
        ({"fields": []}, r"fields: empty list"),
        ({"search": ""}, r"search"),
    ],
)
def test_bad_inputs_name_the_parameter(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        build_query("spectra", **kwargs)


def test_http_round_trip():
    q = build_query(
        "spectra", fields=["uds"], programs=["EMBER-UDS", 6541], gratings=["PRISM"], redshift_range=(1.5, 3.25),
        redshift_quality=[3, 4], max_snr_range=(5, 1e9), dq_flags=~DQFlags.CONTAMINATION & ~DQFlags.LOW_SNR,
        tags=["lrd"], inspected_only=True, has_photometry=False, search="p4_1", cone_search=(34.4, -5.2, 30.0),
        limit=10, offset=5, sort="signal_to_noise", sort_dir="desc",
    )
    assert query_from_params("spectra", q.to_params()) == q


@settings(max_examples=100, deadline=None)
@given(
    lo=st.floats(-1, 20, allow_nan=False), width=st.floats(0, 20, allow_nan=False),
    quality=st.lists(st.integers(0, 4), min_size=1, max_size=5),
    flags=st.integers(0, 127), limit=st.none() | st.integers(0, 10000),
)
def test_round_trip_property(lo, width, quality, flags, limit):
    q = build_query("objects", redshift_range=(lo, lo + width), redshift_quality=quality, dq_flags=flags, limit=limit)
    assert query_from_params("objects", q.to_params()) == q


def test_the_typed_filters_are_the_vocabulary():
    # QueryFilters (the type of **filters) names exactly what build_query accepts
    from campfire.catalog.filters import FILTER_NAMES, PAGING_NAMES, QueryFilters

    assert list(QueryFilters.__annotations__) == list(FILTER_NAMES + PAGING_NAMES)
