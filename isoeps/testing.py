"""Test helpers for plugin authors: MethodTesterMixin and tiny fixtures."""
