"""MethodTesterMixin runs the test double through the method contract."""

from __future__ import annotations

from typing import ClassVar

import harness_plugin

from isoeps.testing import MethodTesterMixin, tiny_split


class TestMeanImageContract(MethodTesterMixin):
    method_class = harness_plugin.MeanImage
    config: ClassVar[dict] = {"sigma": 4.0}


def test_tiny_split_is_deterministic_and_split_disjoint():
    a, b = tiny_split("private", n=4), tiny_split("private", n=4)
    assert (a.images == b.images).all() and a.ids == b.ids
    assert not set(a.ids) & set(tiny_split("reference", n=4).ids)
