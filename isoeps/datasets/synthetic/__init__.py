"""The embedded procedural datasets: ``synthetic-faces`` and ``synthetic-scenes``."""

from isoeps.datasets.synthetic.faces import SyntheticFaces
from isoeps.datasets.synthetic.scenes import SyntheticScenes

__all__ = ["SyntheticFaces", "SyntheticScenes"]
