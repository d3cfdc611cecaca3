"""Fixtures for the dataset tests (helpers live in datasets_fixtures, a unique module name)."""

from datasets_fixtures import celeba_root, coco_root  # noqa: F401
