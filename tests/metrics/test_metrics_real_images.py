"""Metrics on real photographs (scikit-image's LFW subset): faces are closer to faces.

The two halves of the faces are two samples of one distribution; the non-faces are another.
So every distance must rank faces-vs-faces below faces-vs-non-faces, on real image content
rather than on made-up textures.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from isoeps.metrics.fid import fid_from_features
from isoeps.metrics.kid import kid_subsets
from isoeps.metrics.spectrum import spectrum_distance


@pytest.fixture(scope="module")
def lfw_features(lfw_faces) -> tuple[np.ndarray, np.ndarray]:
    from isoeps.errors import MissingWeightsError
    from isoeps.metrics import backbones

    try:
        backbone = backbones.InceptionBackbone()
    except MissingWeightsError as exc:
        pytest.skip(f"no offline Inception weights: {exc}")
    faces, non_faces = lfw_faces
    # 24 faces and 12 non-faces: Inception on one CPU thread costs ~0.3 s an image, and KID
    # separates the two by two orders of magnitude already at this size.
    features = backbone.features(np.concatenate([faces[:24], non_faces[:12]]), batch_size=12)
    return features[:24], features[24:]


def test_lfw_fixture_is_real_faces_and_non_faces(lfw_faces) -> None:
    faces, non_faces = lfw_faces
    assert faces.shape == non_faces.shape == (100, 3, 25, 25) and faces.dtype == np.uint8
    assert len({image.tobytes() for image in np.concatenate([faces, non_faces])}) == 200
    # Face crops are brighter and more alike in layout than background patches.
    assert faces.mean() > non_faces.mean() + 20


def test_kid_and_fid_rank_faces_closer_to_faces(lfw_features) -> None:
    faces, non_faces = lfw_features
    first, second = faces[0::2], faces[1::2]
    same = kid_subsets(first, second, num_subsets=20, subset_size=12).mean()
    other = kid_subsets(first, non_faces, num_subsets=20, subset_size=12).mean()
    assert same < other / 10, (same, other)  # measured: about -0.005 against 0.39
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # n = 12 < 2048: compared at equal n
        fid_same, _ = fid_from_features(first, second)
        fid_other, _ = fid_from_features(first, non_faces)
    assert fid_same < fid_other, (fid_same, fid_other)


def test_spectrum_distance_ranks_faces_closer_to_faces(lfw_faces) -> None:
    faces, non_faces = lfw_faces
    same, _ = spectrum_distance(faces[0::2], faces[1::2])
    other, _ = spectrum_distance(faces[0::2], non_faces[:50])
    assert same < other, (same, other)
