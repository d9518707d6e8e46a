"""Sizes on a benchmark's command line: a list of them, ascending, and a bad one a usage error."""

from __future__ import annotations

import argparse

import pytest

from devservices.sizes import sizes_argument


def test_a_list_of_sizes_is_read_in_ascending_order() -> None:
    assert sizes_argument("2GB, 100MB,") == (100_000_000, 2_000_000_000)


def test_a_bad_size_in_the_list_is_a_usage_error_naming_it() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="'lots' is not a size"):
        sizes_argument("100MB,lots")
