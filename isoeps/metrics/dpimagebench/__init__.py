"""DPImageBench's evaluation protocol (2019ChenGong/DPImageBench at 565f8d7), step by step.

Each metric here is registered as ``dpimagebench-<name>`` and records ``protocol:
dpimagebench`` in every value it writes; ``isoeps metrics compute --protocol dpimagebench``
and a suite's ``protocol: dpimagebench`` select them in place of the isoeps defaults.
"""
